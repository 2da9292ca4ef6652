"""Expiry: an expired session stops accepting work, is canceled, and its reservation and
staged bytes go (lazily on access, and by the sweep).

No test here waits for a lifetime to run out: sessions keep the normal lifetime and the server's
forced-expiry test hook (``--test-hooks``, ``POST /_/test/expire``) ends one on cue, so a loaded
machine cannot make a session expire early or late. The in-server periodic sweep is off here
(``--gc-interval 0``) so that each test sees exactly the path it drives; it has its own module
(test_expiry_sweep.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.conformance.conftest import Release, Target, pallet_only
from tests.conformance.test_publish import index_files
from tests.conformance.test_sessions import assert_problem

SERVER_ARGS = ("--test-hooks", "--gc-interval", "0")


@pytest.fixture(autouse=True)
def _pallet(target: Target) -> None:
    pallet_only(target)


def force_expire(target: Target, session: dict, file_session: dict | None = None) -> None:
    """Move a session's (or one file session's) expires-at into the past, via the test hook."""
    assert target.server is not None
    sid = re.search(r"/sessions/([0-9a-f]+)/$", session["links"]["session"])
    body: dict[str, str] = {"session": sid.group(1)}  # type: ignore[union-attr]
    if file_session is not None:
        fid = re.search(r"/files/([0-9a-f]+)/$", file_session["links"]["file-upload-session"])
        body["file"] = fid.group(1)  # type: ignore[union-attr]
    r = httpx.post(
        f"{target.server.url}/_/test/expire",
        json=body,
        headers={"Authorization": f"Bearer {target.token}"},
        timeout=60,
    )
    assert r.status_code == 204, r.text


def blob_files(target: Target) -> set[Path]:
    """Every stored object: content blobs and staged uploads."""
    root = target.server.data_dir / "blobs"  # type: ignore[union-attr]
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def assert_canceled_and_cleaned(release: Release, target: Target, before: set[Path]) -> None:
    body = release.status()
    assert body["status"] == "canceled"
    assert any("expired" in n for n in body["notices"])
    assert_problem(release.publish(), 409)
    assert_problem(release.start_file(release.wheel()), 409)
    assert index_files(target, release.name) is None
    assert blob_files(target) <= before  # the session's staged and content blobs are gone
    again = Release(target, release.client, release.name, "1.0", release.tmp)
    assert again.open().status_code == 201  # the name was released


def test_expired_session_is_canceled_on_its_next_request(release: Release, target: Target):
    release.open()
    before = blob_files(target)
    fs = release.upload(release.wheel())
    assert fs["status"] == "completed"
    assert blob_files(target) > before
    assert release.status()["status"] == "open"
    force_expire(target, release.session)
    assert_canceled_and_cleaned(release, target, before)


def test_expired_session_is_swept_by_gc_without_any_request(release: Release, target: Target):
    release.open()
    before = blob_files(target)
    assert release.upload(release.wheel())["status"] == "completed"
    assert blob_files(target) > before
    force_expire(target, release.session)
    result = target.server.cli("gc")  # type: ignore[union-attr]
    assert result.returncode == 0, result.stderr
    assert "sessions_expired=1" in result.stdout, result.stdout
    assert blob_files(target) <= before  # before anyone asked about the session
    assert_canceled_and_cleaned(release, target, before)


def test_expired_file_session_is_canceled_and_the_session_goes_on(release: Release, target: Target):
    release.open()
    wheel = release.wheel()
    fs = release.start_file(wheel).json()
    force_expire(target, release.session, fs)
    expired = release.client.get(fs["links"]["file-upload-session"]).json()
    assert expired["status"] == "canceled"
    body = release.status()
    assert body["status"] == "open" and wheel.name not in body["files"]
    assert release.upload(wheel)["status"] == "completed"  # the filename is free again
    assert release.publish().status_code in (201, 202)
    assert release.wait_session()["status"] == "published"


def test_an_unexpired_session_is_left_alone(release: Release, target: Target):
    release.open()
    before = blob_files(target)
    release.upload(release.wheel())
    result = target.server.cli("gc")  # type: ignore[union-attr]
    assert result.returncode == 0, result.stderr
    assert "sessions_expired=0" in result.stdout, result.stdout
    assert release.status()["status"] == "open"
    assert blob_files(target) > before


def test_gc_command_reports_and_is_idempotent(target: Target):
    result = target.server.cli("gc")  # type: ignore[union-attr]
    assert result.returncode == 0, result.stderr
    assert "sessions_expired=" in result.stdout
