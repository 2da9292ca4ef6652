"""Engine creation and schema migration.

SQLite runs in WAL mode with a busy timeout so several worker processes can share one file;
PostgreSQL URLs are routed to psycopg 3. Migrations (Alembic) run on ``pallet serve`` start-up.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event

from pallet.db.session import install_sqlite_begin

MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger("pallet")


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


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent, safe to run on every start).

    A database already migrated by a newer release is left as it is: migrations only add
    (tests/unit/test_migrations_are_additive.py), so this release works on it, and a replica
    of the previous release that restarts during a rolling upgrade must come back up."""
    cfg = alembic_config(engine)
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current is not None:
        try:
            ScriptDirectory.from_config(cfg).get_revision(current)
        except (ResolutionError, CommandError):
            log.warning(
                "the database is at migration %s, from a newer Pallet than this one; "
                "starting on it unchanged (migrations only add)",
                current,
            )
            return
    command.upgrade(cfg, "head")
