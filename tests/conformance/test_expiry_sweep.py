"""The sweep inside the server cancels an expired session and deletes what it staged, with no
request to that session. The session is expired on cue (the ``--test-hooks`` forced-expiry
hook); the test then waits for an outcome, which a loaded machine can delay but not change."""

from __future__ import annotations

import time

from tests.conformance.conftest import Release, Target, pallet_only
from tests.conformance.test_expiry import blob_files, force_expire

SERVER_ARGS = ("--test-hooks", "--gc-interval", "1")


def test_periodic_sweep_cancels_an_expired_session(release: Release, target: Target):
    pallet_only(target)
    release.open()
    before = blob_files(target)
    assert release.upload(release.wheel())["status"] == "completed"
    assert blob_files(target) > before
    force_expire(target, release.session)
    deadline = time.monotonic() + 120
    while not blob_files(target) <= before:  # only a sweep can delete them: nobody asks
        assert time.monotonic() < deadline, "no sweep removed the expired session's blobs"
        time.sleep(0.2)
    body = release.status()
    assert body["status"] == "canceled"
    assert any("expired" in n for n in body["notices"])
    again = Release(target, release.client, release.name, "1.0", release.tmp)
    assert again.open().status_code == 201  # the name was released
