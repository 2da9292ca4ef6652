"""Shared CLI plumbing: settings from flags + env, and a migrated engine."""

from __future__ import annotations

import argparse

from sqlalchemy import Engine

from pallet.config import Settings
from pallet.db.engine import make_engine, upgrade


def settings_from_args(args: argparse.Namespace, **extra: object) -> Settings:
    return Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        database_url=getattr(args, "database_url", None),
        storage_url=getattr(args, "storage_url", None),
        **extra,
    ).resolved()


def migrated_engine(settings: Settings) -> Engine:
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return engine
