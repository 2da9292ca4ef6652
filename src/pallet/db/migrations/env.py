"""Alembic environment: runs against the engine Pallet hands over in ``config.attributes``.

Replicas all migrate on start, often at the same moment, so a migration holds a lock for its
whole transaction: a PostgreSQL advisory lock, SQLite's write lock (``BEGIN IMMEDIATE``). The
others wait, then find the schema at head and do nothing.
"""

from alembic import context
from sqlalchemy import text

from pallet.db.models import Base, schema_comparison_includes

#: The advisory lock key every Pallet migration takes (an arbitrary constant: "pallet" in ASCII).
MIGRATION_LOCK = 0x70616C6C6574

engine = context.config.attributes["engine"]
with engine.execution_options(pallet_write=True).begin() as connection:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        # Autogenerate must not offer to drop the search objects no model can declare.
        include_name=schema_comparison_includes,
    )
    context.run_migrations()
