"""``pallet --help`` (and parsing any command line) loads no command's heavy dependencies: those
are imported when a command runs."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sqlalchemy", "alembic", "uvicorn", "starlette", "boto3", "httpx", "rich")


def test_parsing_every_command_imports_nothing_heavy() -> None:
    probe = (
        "import sys\n"
        "from pallet.cli import build_parser\n"
        "build_parser([])\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pallet", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("serve", "publish", "session", "token", "import", "yank", "db", "gc", "fsck"):
        assert command in out
