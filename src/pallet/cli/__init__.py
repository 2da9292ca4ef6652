"""``pallet`` command line: serve, publish/session, token, trusted-publisher, claim,
proxy-audit, prefetch, import, yank/unyank, db, gc, fsck."""

from __future__ import annotations

import argparse
import importlib
import sys

from pallet import __version__

#: One module per command group, in help order.
COMMANDS = (
    "serve",
    "publish",
    "token",
    "trusted_publisher",
    "claim",
    "proxy",
    "prefetch",
    "imports",
    "yank",
    "db",
    "gc",
    "fsck",
)
#: Commands whose module is named otherwise. ``pallet X`` imports only X's module: a client
#: command must not pay a second of server imports (SQLAlchemy, Alembic, uvicorn), nor an
#: import of a thousand files the web stack's.
MODULE_OF = {
    "session": "publish",
    "import": "imports",
    "unyank": "yank",
    "trusted-publisher": "trusted_publisher",
    "proxy-audit": "proxy",
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", help="data folder (env PALLET_DATA_DIR, default ./pallet-data)"
    )
    parser.add_argument("--database-url", help="SQLAlchemy URL (env PALLET_DATABASE_URL)")
    parser.add_argument("--storage-url", help="blob storage URL (env PALLET_STORAGE_URL)")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pallet", description="Pallet package index")
    parser.add_argument("--version", action="version", version=f"pallet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    wanted = MODULE_OF.get(argv[0], argv[0]) if argv else None
    for name in (wanted,) if wanted in COMMANDS else COMMANDS:
        importlib.import_module(f"pallet.cli.{name}").register(sub, _common)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
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
