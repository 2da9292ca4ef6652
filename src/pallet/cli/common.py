"""Shared CLI plumbing: settings from flags + env, a migrated engine, and the engine of an index
that must already exist."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pallet.config import SECRET_KEY_FILE, Settings

if TYPE_CHECKING:  # the database layer loads when a command runs, not for `pallet --help`
    from sqlalchemy import Engine


def _settings(args: argparse.Namespace, **extra: object) -> Settings:
    return Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        database_url=getattr(args, "database_url", None),
        storage_url=getattr(args, "storage_url", None),
        **extra,
    )


def settings_from_args(args: argparse.Namespace, **extra: object) -> Settings:
    return _settings(args, **extra).resolved()


def migrated_engine(settings: Settings) -> Engine:
    """The engine, with the schema created or brought up to date (``serve``, ``db upgrade``)."""
    from pallet.db.engine import make_engine
    from pallet.db.migrate import upgrade

    engine = make_engine(settings.database_url)
    upgrade(engine)
    return engine


def existing_index(
    args: argparse.Namespace, *, init: bool = False, secret: bool = False
) -> tuple[Settings, Engine]:
    """Settings and migrated engine for a command that acts on an index that already exists
    (``token``, ``yank``).

    A mistyped ``--data-dir`` or ``--database-url`` must not quietly get a fresh, empty index:
    a token made there is unknown to the real server. So unless ``init`` is set, this exits
    with one line when the database is missing or holds no migrated schema (no Alembic version
    row), and, with ``secret``, when there is no secret key to sign tokens with (neither
    ``PALLET_SECRET_KEY`` nor ``<data-dir>/secret-key``). ``init`` creates what is missing, as
    ``pallet serve`` does. Nothing is written before these checks pass."""
    settings = _settings(args).resolved(secret=False)
    if not init:
        can_init = getattr(args, "init", None) is not None
        problem = database_problem(settings.database_url)
        hint = "check --data-dir / --database-url (pallet serve creates the database)"
        if can_init:
            hint += ", or pass --init to create it here"
        if problem is None and secret and not settings.secret_key:
            if not (settings.data_dir / SECRET_KEY_FILE).is_file():
                problem = (
                    f"no secret key in {settings.data_dir} and PALLET_SECRET_KEY is not set, "
                    "so the index could not verify a token made here"
                )
                hint = "point --data-dir at the server's data dir, or set PALLET_SECRET_KEY"
                if can_init:
                    hint += ", or pass --init to create a new key here"
        if problem is not None:
            raise SystemExit(f"error: {problem}; {hint}")
    if secret:
        settings = settings.resolved()
    return settings, migrated_engine(settings)


def database_problem(url: str) -> str | None:
    """Why ``url`` is not an existing Pallet database, or None if it is one. Creates nothing:
    a SQLite file is only opened if it exists."""
    from sqlalchemy import create_engine, inspect, make_url, text
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from pallet.db.engine import normalize_url

    try:
        shown = make_url(url).render_as_string(hide_password=True)
        parsed = make_url(normalize_url(url))
    except ArgumentError:
        return "the database URL cannot be parsed"
    connect_args: dict[str, object] = {}
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:") or not Path(path).is_file():
            return f"no Pallet database at {Path(path).absolute() if path else shown}"
        shown = str(Path(path).absolute())
    elif parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = 10
    engine = create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            version = None
            if inspect(conn).has_table("alembic_version"):
                version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return f"cannot open the database {shown}: {reason[0] if reason else type(exc).__name__}"
    finally:
        engine.dispose()
    if version is None:
        return f"the database {shown} holds no Pallet schema (it was never migrated)"
    return None
