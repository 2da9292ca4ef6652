"""``pallet db upgrade``: apply migrations (``serve`` also does it on start)."""

from __future__ import annotations

import argparse

from pallet.cli.common import migrated_engine, settings_from_args


def register(sub, common) -> None:  # noqa: ANN001
    p = sub.add_parser("db", help="database maintenance")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply migrations")
    common(up)
    up.set_defaults(func=run_upgrade)


def run_upgrade(args: argparse.Namespace) -> int:
    migrated_engine(settings_from_args(args)).dispose()
    print("database is up to date")
    return 0
