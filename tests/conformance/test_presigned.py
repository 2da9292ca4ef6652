"""``vnd-pallet-presigned-put``: bytes go to storage with a pre-signed URL, never with the
index's credentials; the URL binds length, type, checksum and create-only, and ``complete``
re-checks the stored object. On the embedded default Pallet serves the URL itself."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest

from tests.conformance.conftest import Release, Target, post_json
from tests.conformance.test_publish import index_files
from tests.conformance.test_sessions import assert_problem

NAME = "vnd-pallet-presigned-put"


@pytest.fixture(autouse=True)
def _offered(release: Release) -> None:
    release.open()
    if NAME not in release.session["mechanisms"]:
        pytest.skip(f"server does not offer {NAME}")


def put(fs: dict, data: bytes, **header_overrides: str) -> httpx.Response:
    m = fs["mechanism"]
    headers = {**m["headers"], **header_overrides}
    return httpx.request(m["method"], m["url"], content=data, headers=headers, timeout=60)


def test_presigned_put_then_complete_and_publish(release: Release, target: Target):
    wheel = release.wheel()
    fs = release.start_file(wheel, mechanism=NAME).json()
    m = fs["mechanism"]
    assert m["identifier"] == NAME and m["method"] == "PUT"
    assert {"content-length", "x-amz-checksum-sha256"} <= {k.lower() for k in m["headers"]}
    assert m["expires-at"] <= fs["expires-at"]
    assert "authorization" not in {k.lower() for k in m["headers"]}
    r = put(fs, wheel.read_bytes())
    assert r.status_code in (200, 201, 204), r.text
    assert put(fs, wheel.read_bytes()).status_code == 412  # create-only
    assert release.complete(fs).status_code == 201
    assert release.publish().status_code in (201, 202)
    assert release.wait_session()["status"] == "published"
    assert index_files(target, release.name) == [wheel.name]


def test_presigned_requires_sha256(release: Release):
    wheel = release.wheel()
    blake = hashlib.blake2b(wheel.read_bytes()).hexdigest()
    assert_problem(release.start_file(wheel, mechanism=NAME, hashes={"blake2b": blake}), 422)


def test_tampered_requests_are_refused(release: Release):
    wheel = release.wheel()
    data = wheel.read_bytes()
    fs = release.start_file(wheel, mechanism=NAME).json()
    # wrong bytes of the right length: the checksum is signed
    bad = bytes([data[0] ^ 1]) + data[1:]
    assert put(fs, bad).status_code in (400, 403)
    # a different signed header value
    other = base64.b64encode(hashlib.sha256(bad).digest()).decode()
    assert put(fs, bad, **{"x-amz-checksum-sha256": other}).status_code == 403
    # a tampered signature
    m = fs["mechanism"]
    url = m["url"][:-4] + ("0000" if not m["url"].endswith("0000") else "1111")
    assert httpx.put(url, content=data, headers=m["headers"]).status_code == 403
    # nothing arrived, so completion is refused and the file stays pending
    assert_problem(release.complete(fs), 409)
    assert put(fs, data).status_code in (200, 201, 204)
    assert release.complete(fs).status_code == 201


def test_declared_hash_mismatch_is_caught_at_complete(release: Release):
    """The URL binds sha256 only; other declared hashes are checked by complete."""
    wheel = release.wheel()
    data = wheel.read_bytes()
    hashes = {"sha256": hashlib.sha256(data).hexdigest(), "sha512": "0" * 128}
    fs = release.start_file(wheel, mechanism=NAME, hashes=hashes).json()
    assert put(fs, data).status_code in (200, 201, 204)
    body = assert_problem(release.complete(fs), 400)
    assert "hashes.sha512" in [e["source"] for e in body["errors"]]


def test_url_is_reissued_by_status_and_extend(release: Release):
    fs = release.start_file(release.wheel(), mechanism=NAME).json()
    again = release.client.get(fs["links"]["file-upload-session"]).json()
    assert again["mechanism"]["url"]
    extended = post_json(release.client, fs["links"]["extend"], {"extend-for": 60}).json()
    assert extended["mechanism"]["url"]
