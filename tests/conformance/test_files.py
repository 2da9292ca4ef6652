"""File-upload sessions and the http-post-bytes mechanism over HTTP."""

from __future__ import annotations

import hashlib
import json
import re

from tests.conformance.conftest import Release, post_json
from tests.conformance.test_sessions import RFC3339_Z, assert_problem


def test_must_create_file_session_202_with_retry_after(release: Release):
    release.open()
    wheel = release.wheel()
    r = release.start_file(wheel)
    assert r.status_code == 202
    assert int(r.headers["retry-after"]) >= 0
    body = r.json()
    assert body["status"] == "pending"
    assert RFC3339_Z.match(body["expires-at"])
    assert body["mechanism"]["identifier"] == "http-post-bytes"
    assert body["mechanism"]["file_url"].startswith("http")
    assert set(body["links"]) >= {"file-upload-session", "complete"}
    files = release.status()["files"]
    assert files[wheel.name]["status"] == "pending"
    assert files[wheel.name]["link"].startswith("http")


def test_should_bad_filename_is_400(release: Release):
    release.open()
    wheel = release.wheel()
    for name in ("../x-1.0.tar.gz", "x-1.0.zip", "not a dist", "other-1.0-py3-none-any.whl"):
        assert_problem(release.start_file(wheel, filename=name), 400)


def test_must_unsupported_mechanism_is_422(release: Release):
    release.open()
    assert_problem(release.start_file(release.wheel(), mechanism="vnd-nobody-teleport"), 422)


def test_hashes_need_a_secure_algorithm_and_valid_hex(release: Release):
    release.open()
    wheel = release.wheel()
    md5 = hashlib.md5(wheel.read_bytes()).hexdigest()  # noqa: S324
    assert_problem(release.start_file(wheel, hashes={"md5": md5}), 400)
    assert_problem(release.start_file(wheel, hashes={"sha256": "XYZ"}), 400)
    assert_problem(release.start_file(wheel, hashes={"shake_128": "00"}), 400)
    assert_problem(release.start_file(wheel, hashes={"nope": "00"}), 400)
    assert_problem(release.start_file(wheel, size=0), 400)


def test_must_in_progress_file_cannot_be_replaced_409(release: Release):
    release.open()
    wheel = release.wheel()
    assert release.start_file(wheel).status_code == 202
    assert_problem(release.start_file(wheel), 409)


def test_upload_complete_201_completed_with_location(release: Release):
    release.open()
    wheel = release.wheel()
    fs = release.start_file(wheel).json()
    sent = release.send_bytes(fs, wheel.read_bytes())
    assert sent.status_code == 204
    done = release.complete(fs)
    assert done.status_code == 201
    assert done.headers["location"] == fs["links"]["file-upload-session"]
    assert done.json()["status"] == "completed"
    assert release.status()["files"][wheel.name]["status"] == "completed"


def test_complete_without_bytes_is_409_and_file_stays_pending(release: Release):
    release.open()
    fs = release.start_file(release.wheel()).json()
    assert_problem(release.complete(fs), 409)
    assert release.client.get(fs["links"]["file-upload-session"]).json()["status"] == "pending"


def test_hash_mismatch_puts_file_in_error_and_blocks_publish(release: Release):
    release.open()
    wheel = release.wheel()
    fs = release.start_file(wheel, hashes={"sha256": "0" * 64}).json()
    assert release.send_bytes(fs, wheel.read_bytes()).status_code == 204
    body = assert_problem(release.complete(fs), 400)
    assert "hashes.sha256" in [e["source"] for e in body["errors"]]
    status = release.client.get(fs["links"]["file-upload-session"]).json()["status"]
    assert status == "error"
    entry = release.status()["files"][wheel.name]
    assert entry["status"] == "error" and entry["notices"]
    blocked = assert_problem(release.publish(), 409)
    assert any(wheel.name in e["source"] for e in blocked["errors"])
    # error is a dead end: only DELETE, then a fresh upload
    assert_problem(release.complete(fs), 409)
    assert release.client.delete(fs["links"]["file-upload-session"]).status_code == 204
    assert wheel.name not in release.status()["files"]
    assert release.upload(wheel)["status"] == "completed"


def test_size_mismatch_is_refused(release: Release):
    release.open()
    wheel = release.wheel()
    data = wheel.read_bytes()
    fs = release.start_file(wheel).json()
    assert_problem(release.send_bytes(fs, data[:-1]), 400)
    assert_problem(release.send_bytes(fs, data + b"extra"), 400)
    chunked = release.client.post(
        fs["mechanism"]["file_url"],
        content=iter([data, b"more"]),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert_problem(chunked, 400)
    wrong_type = release.client.post(
        fs["mechanism"]["file_url"], content=data, headers={"Content-Type": "text/plain"}
    )
    assert_problem(wrong_type, 415)
    assert release.send_bytes(fs, data).status_code == 204  # a retry while pending succeeds
    assert release.complete(fs).status_code == 201


def test_metadata_of_other_version_fails_completion(release: Release):
    from tests.dists import core_metadata

    release.open()
    wheel = release.wheel(metadata=core_metadata(release.name, "9.9"))
    fs = release.start_file(wheel).json()
    release.send_bytes(fs, wheel.read_bytes())
    body = assert_problem(release.complete(fs), 400)
    assert "version" in body["title"].lower() or "version" in body.get("detail", "").lower()


def test_invalid_archive_fails_completion(release: Release):
    release.open()
    bogus = release.tmp / f"{release.name.replace('-', '_')}-1.0-py3-none-any.whl"
    bogus.write_bytes(b"not a zip at all" * 50)
    fs = release.start_file(bogus).json()
    release.send_bytes(fs, bogus.read_bytes())
    assert_problem(release.complete(fs), 400)


def test_must_delete_is_204_and_removes_entry(release: Release):
    release.open()
    wheel = release.wheel()
    fs = release.upload(wheel)
    url = fs["links"]["file-upload-session"]
    assert release.client.delete(url).status_code == 204
    assert wheel.name not in release.status()["files"]
    assert release.client.get(url).json()["status"] == "canceled"
    assert_problem(release.client.delete(url), 409)


def test_file_extend(release: Release):
    release.open()
    fs = release.start_file(release.wheel()).json()
    r = post_json(release.client, fs["links"]["extend"], {"extend-for": 60})
    assert r.status_code == 200
    assert r.json()["expires-at"] >= fs["expires-at"]
    # never beyond the publishing session
    assert r.json()["expires-at"] <= release.status()["expires-at"]


def test_attestations_before_complete(release: Release):
    import base64

    release.open()
    wheel = release.wheel()
    fs = release.start_file(wheel).json()
    url = fs["mechanism"]["attestations_url"]
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": wheel.name, "digest": {"sha256": sha}}],
    }
    att = [
        {
            "version": 1,
            "verification_material": {"certificate": "", "transparency_entries": []},
            "envelope": {
                "statement": base64.b64encode(json.dumps(statement).encode()).decode(),
                "signature": "",
            },
        }
    ]
    assert_problem(
        release.client.post(
            url, content=json.dumps(att), headers={"Content-Type": "application/json"}
        ),
        409,
    )
    release.send_bytes(fs, wheel.read_bytes())
    assert_problem(
        release.client.post(url, content=b"[1]", headers={"Content-Type": "application/json"}), 400
    )
    assert_problem(
        release.client.post(url, content=json.dumps(att), headers={"Content-Type": "text/plain"}),
        415,
    )
    ok = release.client.post(
        url, content=json.dumps(att), headers={"Content-Type": "application/json"}
    )
    assert ok.status_code == 204
    assert release.complete(fs).status_code == 201


def test_declared_size_over_limit_is_409(release: Release):
    release.open()
    r = release.start_file(release.wheel(), size=2**50)
    body = assert_problem(r, 409)
    assert re.search(r"\d+", body["detail"])
