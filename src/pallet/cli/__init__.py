"""``pallet`` command line: serve, publish/session, token, yank/unyank, db, gc."""

from __future__ import annotations

import argparse
import sys

from pallet import __version__
from pallet.cli import db, gc, publish, serve, token, yank


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", help="data folder (env PALLET_DATA_DIR, default ./pallet-data)"
    )
    parser.add_argument("--database-url", help="SQLAlchemy URL (env PALLET_DATABASE_URL)")
    parser.add_argument("--storage-url", help="blob storage URL (env PALLET_STORAGE_URL)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pallet", description="Pallet package index")
    parser.add_argument("--version", action="version", version=f"pallet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (serve, publish, token, yank, db, gc):
        module.register(sub, _common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        from pallet.core.problems import Problem

        if isinstance(exc, Problem):
            print(f"error: {exc.title}: {exc.detail}", file=sys.stderr)
            return 1
        raise
