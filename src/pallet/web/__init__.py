"""The web UI: server-rendered pages (Jinja2) over the same queries and services as the API.

``pages`` reads what each page shows from the database, ``readme`` renders long descriptions
as PyPI does, ``render`` holds the templates, the page cache and the security headers,
``signin`` keeps the browser session, ``routes`` answers requests. No rule lives here twice:
publishing, cancelling and yanking call what the API calls.
"""
