"""Deferred processing (202): file completion and publish in the background, with the
filename reservation a deferred publish holds. Pallet-only server switches slow it down."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conformance.conftest import Release, Target, legacy_upload, pallet_only
from tests.conformance.test_publish import index_files
from tests.conformance.test_sessions import assert_problem

# Deferred work is held (for at most 10 minutes) until the test has seen it processing and
# releases it through the test hook: no race with the clock, however loaded the machine.
SERVER_ARGS = (
    "--deferred-publish",
    "--deferred-complete-size",
    "1",
    "--processing-delay",
    "600",
    "--complete-wait",
    "0",
    "--test-hooks",
)


def release_processing(target: Target) -> None:
    """Release the held task; ask again until the server says one was waiting (bounded)."""
    assert target.server is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = httpx.post(
            f"{target.server.url}/_/test/release-processing",
            headers={"Authorization": f"Bearer {target.token}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        if r.json()["released"]:
            return
        time.sleep(0.05)
    raise AssertionError("no deferred task was waiting to be released")


@pytest.fixture(autouse=True)
def _pallet(target: Target) -> None:
    pallet_only(target)


def test_complete_202_processing_then_completed_and_delete_409_meanwhile(release: Release):
    release.open()
    wheel = release.wheel()
    fs = release.start_file(wheel).json()
    release.send_bytes(fs, wheel.read_bytes())
    r = release.complete(fs)
    assert r.status_code == 202
    assert r.headers["location"] == fs["links"]["file-upload-session"]
    assert r.json()["status"] == "processing"
    status = release.client.get(fs["links"]["file-upload-session"])
    assert status.json()["status"] == "processing"
    assert "retry-after" in status.headers  # clients SHOULD honour it while processing
    assert_problem(release.client.delete(fs["links"]["file-upload-session"]), 409)
    assert_problem(release.publish(), 409)  # a processing file blocks publish
    release_processing(release.target)
    assert release.wait_file(fs["links"]["file-upload-session"])["status"] == "completed"


def upload_released(release: Release, target: Target, wheel) -> None:  # noqa: ANN001
    """One file through a deferred complete: released once the server holds it."""
    fs = release.start_file(wheel).json()
    release.send_bytes(fs, wheel.read_bytes())
    assert release.complete(fs).status_code == 202
    release_processing(target)
    assert release.wait_file(fs["links"]["file-upload-session"])["status"] == "completed"


def test_deferred_publish_reserves_filenames_then_publishes(release: Release, target: Target):
    seed = Release(target, release.client, release.name, "0.1", release.tmp)
    seed.open()
    assert seed.publish().status_code == 202
    release_processing(target)
    assert seed.wait_session()["status"] == "published"
    release.open()
    wheel = release.wheel()
    upload_released(release, target, wheel)
    r = release.publish()
    assert r.status_code == 202
    assert r.headers["location"] == release.session["links"]["session"]
    assert release.status()["status"] == "processing"
    assert_problem(release.client.delete(release.session["links"]["session"]), 409)
    legacy = legacy_upload(target, release.name, "1.0", wheel)
    assert legacy.status_code == 409, legacy.text  # reserved by the in-flight publish
    assert wheel.name not in (index_files(target, release.name) or [])  # invisible meanwhile
    release_processing(target)
    assert release.wait_session()["status"] == "published"
    assert wheel.name in index_files(target, release.name)
