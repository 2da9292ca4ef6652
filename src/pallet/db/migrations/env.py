"""Alembic environment: runs against the engine Pallet hands over in ``config.attributes``."""

from alembic import context

from pallet.db.models import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
