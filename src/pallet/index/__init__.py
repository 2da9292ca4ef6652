"""The read path: simple API (HTML + JSON from one model), JSON API, downloads."""
