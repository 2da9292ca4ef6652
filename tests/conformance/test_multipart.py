"""``vnd-pallet-s3multipart-presigned``: parts PUT with pre-signed URLs, resumable, then
assembled and verified at complete."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conformance.conftest import Release, Target, post_json
from tests.conformance.test_publish import index_files
from tests.conformance.test_sessions import assert_problem

NAME = "vnd-pallet-s3multipart-presigned"


def big_wheel(directory: Path, name: str, payload: int) -> Path:
    module = name.replace("-", "_")
    path = directory / f"{module}-1.0-py3-none-any.whl"
    info = f"{module}-1.0.dist-info"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{module}/payload.bin", os.urandom(payload))
        zf.writestr(f"{module}/__init__.py", "")
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        zf.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(f"{info}/RECORD", "")
    return path


def put_part(part: dict, data: bytes) -> httpx.Response:
    return httpx.put(part["url"], content=data, timeout=60)


@pytest.fixture(autouse=True)
def _offered(release: Release) -> None:
    release.open()
    if NAME not in release.session["mechanisms"]:
        pytest.skip(f"server does not offer {NAME}")


def test_parts_resume_then_complete_and_publish(release: Release, target: Target):
    wheel = big_wheel(release.tmp, release.name, 40 * 2**20)
    data = wheel.read_bytes()
    fs = release.start_file(wheel, mechanism=NAME).json()
    m = fs["mechanism"]
    parts = m["parts"]
    assert len(parts) >= 3 and m["part-size"] >= 5 * 2**20
    assert sum(p["size"] for p in parts) == len(data)

    def chunk(p: dict) -> bytes:
        start = (p["part-number"] - 1) * m["part-size"]
        return data[start : start + p["size"]]

    etags = {}
    for p in parts[::2]:  # a client that crashed half-way
        r = put_part(p, chunk(p))
        assert r.status_code == 200, r.text
        etags[p["part-number"]] = r.headers.get("etag", "")
    listed = release.client.get(m["parts_url"]).json()
    assert sorted(x["part-number"] for x in listed) == [p["part-number"] for p in parts[::2]]
    body = assert_problem(release.complete(fs), 409)
    assert {e["source"] for e in body["errors"]} == {
        f"parts/{p['part-number']}" for p in parts[1::2]
    }
    fresh = release.client.get(fs["links"]["file-upload-session"]).json()["mechanism"]["parts"]
    for p in fresh[1::2]:  # resume: only the missing parts are sent
        assert put_part(p, chunk(p)).status_code == 200
    bad_size = put_part(fresh[0], chunk(fresh[0])[:-1])
    assert bad_size.status_code in (400, 403)
    done = release.complete(fs)
    assert done.status_code in (201, 202), done.text
    assert release.wait_file(fs["links"]["file-upload-session"])["status"] == "completed"
    assert release.publish().status_code in (201, 202)
    assert release.wait_session()["status"] == "published"
    assert index_files(target, release.name) == [wheel.name]


def test_reported_etags_must_match(release: Release):
    wheel = big_wheel(release.tmp, release.name, 6 * 2**20)
    fs = release.start_file(wheel, mechanism=NAME).json()
    part = fs["mechanism"]["parts"][0]
    assert put_part(part, wheel.read_bytes()).status_code == 200
    r = post_json(release.client, fs["mechanism"]["parts_url"], {})
    assert_problem(r, 400)  # not a list of parts
    wrong = release.client.post(
        fs["mechanism"]["parts_url"], json=[{"part-number": 1, "etag": '"nope"'}]
    )
    assert wrong.status_code == 204
    assert_problem(release.complete(fs), 400)
    assert release.client.get(fs["links"]["file-upload-session"]).json()["status"] == "error"
