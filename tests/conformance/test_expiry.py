"""Expiry: an expired session stops accepting work, is canceled, and its reservation and
staged bytes go (lazily on access, and by the server's periodic sweep)."""

from __future__ import annotations

import time

import pytest

from tests.conformance.conftest import Release, Target, pallet_only
from tests.conformance.test_publish import index_files
from tests.conformance.test_sessions import assert_problem

SERVER_ARGS = ("--session-lifetime", "2", "--gc-interval", "1")


@pytest.fixture(autouse=True)
def _pallet(target: Target) -> None:
    pallet_only(target)


def test_expired_session_is_canceled_and_cleaned(release: Release, target: Target):
    release.open()
    fs = release.upload(release.wheel())
    assert fs["status"] == "completed"
    blobs = target.server.data_dir / "blobs"  # type: ignore[union-attr]
    assert any(p.is_file() for p in (blobs / "sha256").rglob("*"))
    time.sleep(3.5)  # past expiry and at least one sweep
    body = release.status()
    assert body["status"] == "canceled"
    assert any("expired" in n for n in body["notices"])
    assert_problem(release.publish(), 409)
    assert_problem(release.start_file(release.wheel()), 409)
    assert index_files(target, release.name) is None
    # the sweep removed the staged and content blobs nothing else refers to
    assert not any(p.is_file() for p in (blobs / "sha256").rglob("*"))
    again = Release(target, release.client, release.name, "1.0", release.tmp)
    assert again.open().status_code == 201  # the name was released


def test_gc_command_reports_and_is_idempotent(target: Target):
    result = target.server.cli("gc")  # type: ignore[union-attr]
    assert result.returncode == 0, result.stderr
    assert "sessions_expired=" in result.stdout
