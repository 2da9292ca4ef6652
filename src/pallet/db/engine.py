"""Engine creation.

SQLite runs in WAL mode with a busy timeout so several worker processes can share one file;
PostgreSQL URLs are routed to psycopg 3. Migrations live apart, in ``pallet.db.migrate``: every
server worker imports this module, and none of them needs Alembic (about 10 MB a process).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event

from pallet.db.session import install_sqlite_begin


def normalize_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        install_sqlite_begin(engine)
        return engine
    # pre_ping: a connection that died in a PostgreSQL restart is replaced, not handed out.
    # connect_timeout and pool_timeout: during an outage a request fails in seconds (503), it
    # never holds a worker thread for minutes.
    return create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
    )

