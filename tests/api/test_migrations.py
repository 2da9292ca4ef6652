"""Replicas migrate on start, often together: concurrent upgrades of one fresh database, each in
its own process as replicas are, must all succeed and leave it at head."""

from __future__ import annotations

import subprocess
import sys

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from pallet.db.engine import make_engine
from pallet.db.migrate import alembic_config

_MIGRATE = (
    "import sys; from pallet.db.engine import make_engine; from pallet.db.migrate import upgrade; "
    "upgrade(make_engine(sys.argv[1]))"
)


def test_concurrent_upgrades_of_a_fresh_database(database_url: str) -> None:
    migrators = [
        subprocess.Popen(
            [sys.executable, "-c", _MIGRATE, database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=120), p.stdout.read() if p.stdout else "") for p in migrators]
    assert [code for code, _ in outcomes] == [0, 0, 0, 0], outcomes
    engine = make_engine(database_url)
    try:
        head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == head
        assert {"projects", "files", "journal", "upload_sessions"} <= set(
            inspect(engine).get_table_names()
        )
    finally:
        engine.dispose()


def test_migrations_build_what_the_models_declare(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata

    from pallet.db.migrate import upgrade
    from pallet.db.models import Base, schema_comparison_includes

    engine = make_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            # Less the search objects of one engine only, which no model can declare.
            opts = {"include_name": schema_comparison_includes}
            diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_a_database_migrated_by_a_newer_release_is_left_alone(database_url: str) -> None:
    """During a rolling upgrade a replica of the previous release may restart after the new
    release migrated the database: it must start, not die on the unknown revision."""
    from sqlalchemy import text

    from pallet.db.migrate import upgrade

    engine = make_engine(database_url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
        upgrade(engine)  # no error
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == "from_the_future"
    finally:
        engine.dispose()
