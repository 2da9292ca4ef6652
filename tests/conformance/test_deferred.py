"""Deferred processing (202): file completion and publish in the background, with the
filename reservation a deferred publish holds. Pallet-only server switches slow it down."""

from __future__ import annotations

import pytest

from tests.conformance.conftest import Release, Target, legacy_upload, pallet_only
from tests.conformance.test_publish import index_files
from tests.conformance.test_sessions import assert_problem

SERVER_ARGS = ("--deferred-publish", "--deferred-complete-size", "1", "--processing-delay", "1.5")


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
    assert release.wait_file(fs["links"]["file-upload-session"])["status"] == "completed"


def test_deferred_publish_reserves_filenames_then_publishes(release: Release, target: Target):
    seed = Release(target, release.client, release.name, "0.1", release.tmp)
    seed.open()
    seed.publish()
    seed.wait_session()
    release.open()
    wheel = release.wheel()
    release.upload(wheel)
    r = release.publish()
    assert r.status_code == 202
    assert r.headers["location"] == release.session["links"]["session"]
    assert release.status()["status"] == "processing"
    assert_problem(release.client.delete(release.session["links"]["session"]), 409)
    legacy = legacy_upload(target, release.name, "1.0", wheel)
    assert legacy.status_code == 409, legacy.text  # reserved by the in-flight publish
    assert wheel.name not in (index_files(target, release.name) or [])  # invisible meanwhile
    assert release.wait_session()["status"] == "published"
    assert wheel.name in index_files(target, release.name)
