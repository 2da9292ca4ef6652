"""The web UI: server-rendered pages (Jinja2) over the same queries and services as the API.

``pages`` builds what each page shows (pure data from the database), ``readme`` renders
long descriptions as PyPI does, ``signin`` keeps the browser session, ``routes`` answers
requests. No rule lives here twice: publishing, cancelling and yanking call what the API calls.
"""
