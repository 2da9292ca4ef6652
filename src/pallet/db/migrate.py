"""Schema migration (Alembic): ``pallet serve`` runs it at start in a short-lived child process,
``pallet db upgrade`` and the commands that may create an index run it in their own.

Apart from ``pallet.db.engine`` so that the processes that serve never import Alembic (nor
Mako and Pygments, which it brings): that is about 10 MB of every worker's memory.
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
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger("pallet")


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
