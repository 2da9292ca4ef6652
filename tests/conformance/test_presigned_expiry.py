"""An expired pre-signed URL is refused (Pallet's own short-lived URLs)."""

from __future__ import annotations

import time

from tests.conformance.conftest import Release, Target, pallet_only
from tests.conformance.test_presigned import NAME, put

SERVER_ARGS = ("--presign-ttl", "2")


def test_expired_url_is_refused(release: Release, target: Target):
    pallet_only(target)
    release.open()
    wheel = release.wheel()
    fs = release.start_file(wheel, mechanism=NAME).json()
    time.sleep(3.2)
    assert put(fs, wheel.read_bytes()).status_code == 403
    fresh = release.client.get(fs["links"]["file-upload-session"]).json()
    assert put(fresh, wheel.read_bytes()).status_code in (200, 201, 204)
