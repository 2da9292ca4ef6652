"""Pallet's own release artefacts: the sdist and wheel build, pass ``twine check``, and the wheel
installs into a fresh venv and as a uv tool, where ``pallet serve`` starts (what ``make dist``
does, run here so CI proves it from a clean clone)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.support import tool

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_sdist_and_wheel_build_check_install_and_serve(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    wheels, sdists = sorted(out.glob("pallet-*.whl")), sorted(out.glob("pallet-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    check = subprocess.run(
        [tool("twine"), "check", "--strict", *map(str, wheels + sdists)],
        capture_output=True, text=True, timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    installed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_dist.py"), str(wheels[0])],
        capture_output=True, text=True, timeout=600,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "pallet serve is healthy" in installed.stdout
    assert "uv tool install: pallet" in installed.stdout
