"""The database: models, engine set-up, migrations. SQLite (embedded) and PostgreSQL run the same code."""
