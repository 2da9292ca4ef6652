"""The whole write and read path on a real S3 store (SeaweedFS): legacy uploads, Upload 2.0 with
http-post-bytes, downloads streamed from the bucket, and nothing left behind by a rejection."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.api.uploads import upload
from tests.dists import make_sdist, make_wheel

V2 = "application/vnd.pypi.upload.v2+json"
META = {"meta": {"api-version": "2.0"}}


@pytest.fixture
def s3_index(make_index, seaweedfs, monkeypatch):  # noqa: ANN001, ANN201
    for key, value in seaweedfs.env().items():
        monkeypatch.setenv(key, value)
    bucket = seaweedfs.new_bucket()
    index = make_index(storage_url=f"s3://{bucket}?endpoint_url={seaweedfs.endpoint}")
    index.bucket = bucket
    index.objects = lambda: sorted(  # type: ignore[attr-defined]
        o["Key"] for o in seaweedfs.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    )
    return index


def open_session(c, headers: dict, name: str, version: str) -> dict:  # noqa: ANN001
    body = {**META, "name": name, "version": version}
    return c.post("/upload/2.0/", content=json.dumps(body), headers=headers).json()


def start_file(
    c,
    headers: dict,
    session: dict,
    filename: str,
    size: int,
    sha256: str,  # noqa: ANN001, ANN201
    mechanism: str,
):
    body = {
        **META,
        "filename": filename,
        "size": size,
        "hashes": {"sha256": sha256},
        "mechanism": mechanism,
    }
    return c.post(session["links"]["upload"], headers=headers, content=json.dumps(body)).json()


def test_legacy_upload_and_download_on_s3(s3_index, tmp_path):
    token = s3_index.token()
    wheel = make_wheel(tmp_path, "cloudy", "1.0")
    sdist = make_sdist(tmp_path, "cloudy", "1.0")
    for dist in (wheel, sdist):
        assert upload(s3_index.client, dist, token, name="cloudy", version="1.0").status_code == 200
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert f"sha256/{sha[:2]}/{sha[2:4]}/{sha}" in s3_index.objects()
    assert s3_index.blob_files() == []  # nothing on local disk: the bytes live in the bucket
    page = s3_index.client.get(
        "/simple/cloudy/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    ).json()
    url = next(f["url"] for f in page["files"] if f["filename"] == wheel.name)
    got = s3_index.client.get(f"/simple/cloudy/{url}")
    assert got.content == wheel.read_bytes()
    part = s3_index.client.get(f"/simple/cloudy/{url}", headers={"Range": "bytes=5-9"})
    assert part.status_code == 206 and part.content == wheel.read_bytes()[5:10]
    assert s3_index.client.get(f"/simple/cloudy/{url}.metadata").status_code == 200
    assert s3_index.client.get("/_/ready").json()["checks"]["storage"] == "ok"


def test_rejected_upload_leaves_bucket_empty(s3_index, tmp_path):
    wheel = make_wheel(tmp_path, "cloudy", "1.0")
    r = upload(
        s3_index.client,
        wheel,
        s3_index.token(),
        name="cloudy",
        version="1.0",
        sha256_digest="0" * 64,
    )
    assert r.status_code == 400
    assert s3_index.objects() == []


def test_upload_2_0_http_post_bytes_on_s3(s3_index, tmp_path):
    token = s3_index.token()
    c = s3_index.client
    headers = {"Authorization": f"Bearer {token}", "Content-Type": V2, "Accept": V2}
    s = open_session(c, headers, "stratus", "2.0")
    wheel = make_wheel(tmp_path, "stratus", "2.0")
    data = wheel.read_bytes()
    fs = start_file(
        c, headers, s, wheel.name, len(data), hashlib.sha256(data).hexdigest(), "http-post-bytes"
    )
    sent = c.post(
        fs["mechanism"]["file_url"],
        content=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
    )
    assert sent.status_code == 204
    assert any(k.startswith("staging/") for k in s3_index.objects())
    done = c.post(fs["links"]["complete"], content=json.dumps(META), headers=headers)
    assert done.status_code == 201, done.text
    assert not any(k.startswith("staging/") for k in s3_index.objects())
    assert (
        c.post(s["links"]["publish"], content=json.dumps(META), headers=headers).status_code == 201
    )
    page = c.get("/simple/stratus/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    url = page.json()["files"][0]["url"]
    assert c.get(f"/simple/stratus/{url}").content == data
    assert [p for p in s3_index.spool_files() if p.is_file()] == []


def test_presigned_put_goes_straight_to_the_bucket(s3_index, tmp_path):
    """The URL is SigV4 for the real store: the store itself refuses wrong bytes and forged
    signatures; Pallet re-checks the object at complete."""
    import httpx

    token = s3_index.token()
    c = s3_index.client
    headers = {"Authorization": f"Bearer {token}", "Content-Type": V2, "Accept": V2}
    s = open_session(c, headers, "cirrus", "1.0")
    assert s["mechanisms"][0] == "vnd-pallet-presigned-put"
    wheel = make_wheel(tmp_path, "cirrus", "1.0")
    data = wheel.read_bytes()
    fs = start_file(
        c,
        headers,
        s,
        wheel.name,
        len(data),
        hashlib.sha256(data).hexdigest(),
        "vnd-pallet-presigned-put",
    )
    m = fs["mechanism"]
    assert m["url"].startswith(s3_index.services.store.client.meta.endpoint_url)
    assert "X-Amz-Signature" in m["url"]
    bad = bytes([data[0] ^ 1]) + data[1:]
    assert httpx.put(m["url"], content=bad, headers=m["headers"]).status_code == 400  # BadDigest
    forged = m["url"].replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert httpx.put(forged, content=data, headers=m["headers"]).status_code == 403
    assert (
        c.post(fs["links"]["complete"], content=json.dumps(META), headers=headers).status_code
        == 409
    )  # nothing stored yet
    assert httpx.put(m["url"], content=data, headers=m["headers"]).status_code == 200
    assert (
        c.post(fs["links"]["complete"], content=json.dumps(META), headers=headers).status_code
        == 201
    )
    assert (
        c.post(s["links"]["publish"], content=json.dumps(META), headers=headers).status_code == 201
    )
    page = c.get("/simple/cirrus/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert c.get(f"/simple/cirrus/{page.json()['files'][0]['url']}").content == data
    assert not any(k.startswith("staging/") for k in s3_index.objects())


@pytest.mark.slow
def test_200mb_presigned_upload_moves_no_file_bytes_through_pallet(s3_index, tmp_path, monkeypatch):
    """Pallet only reads the wheel's central directory and METADATA (ranged GETs) and asks the
    store for the checksum it verified; the 200 MB go client -> store."""
    import os
    import zipfile

    import httpx

    from pallet.storage import s3

    read = {"bytes": 0}
    original_readinto = s3._RangeReader.readinto
    original_iter = s3.S3BlobStore.iter_bytes

    def counting_readinto(self, buffer):  # noqa: ANN001, ANN202
        n = original_readinto(self, buffer)
        read["bytes"] += n
        return n

    def counting_iter(self, *a, **kw):  # noqa: ANN002, ANN003, ANN202
        for chunk in original_iter(self, *a, **kw):
            read["bytes"] += len(chunk)
            yield chunk

    monkeypatch.setattr(s3._RangeReader, "readinto", counting_readinto)
    monkeypatch.setattr(s3.S3BlobStore, "iter_bytes", counting_iter)

    wheel = tmp_path / "nimbus-1.0-py3-none-any.whl"
    block = os.urandom(8 * 2**20)
    sha = hashlib.sha256()
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_STORED) as zf:
        with zf.open("nimbus/payload.bin", "w", force_zip64=True) as f:
            for _ in range(25):
                f.write(block)
        zf.writestr("nimbus/__init__.py", "")
        info = "nimbus-1.0.dist-info"
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: nimbus\nVersion: 1.0\n")
        zf.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(f"{info}/RECORD", "")
    size = wheel.stat().st_size
    assert size > 200 * 10**6
    with wheel.open("rb") as f:
        while chunk := f.read(2**20):
            sha.update(chunk)

    token = s3_index.token()
    c = s3_index.client
    headers = {"Authorization": f"Bearer {token}", "Content-Type": V2, "Accept": V2}
    s = open_session(c, headers, "nimbus", "1.0")
    fs = start_file(c, headers, s, wheel.name, size, sha.hexdigest(), "vnd-pallet-presigned-put")
    m = fs["mechanism"]
    with wheel.open("rb") as f:
        assert httpx.put(m["url"], content=f, headers=m["headers"], timeout=300).status_code == 200
    done = c.post(fs["links"]["complete"], content=json.dumps(META), headers=headers)
    assert done.status_code in (201, 202), done.text
    import time

    deadline = time.monotonic() + 120
    while (
        c.get(fs["links"]["file-upload-session"], headers=headers).json()["status"] == "processing"
    ):
        assert time.monotonic() < deadline, "still processing after 120 s"
        time.sleep(0.1)
    assert (
        c.get(fs["links"]["file-upload-session"], headers=headers).json()["status"] == "completed"
    )
    assert read["bytes"] < 2 * 2**20, read
    assert (
        c.post(s["links"]["publish"], content=json.dumps(META), headers=headers).status_code == 201
    )
    key = f"sha256/{sha.hexdigest()[:2]}/{sha.hexdigest()[2:4]}/{sha.hexdigest()}"
    assert key in s3_index.objects()


def test_download_redirect_mode_gives_stable_presigned_urls(
    make_index, seaweedfs, monkeypatch, tmp_path
):
    import httpx

    for key, value in seaweedfs.env().items():
        monkeypatch.setenv(key, value)
    bucket = seaweedfs.new_bucket()
    index = make_index(
        storage_url=f"s3://{bucket}?endpoint_url={seaweedfs.endpoint}",
        download_redirect=True,
        download_url_window=600,
    )
    wheel = make_wheel(tmp_path, "rain", "1.0")
    assert upload(index.client, wheel, index.token(), name="rain", version="1.0").status_code == 200
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    url = f"/files/{sha}/{wheel.name}"
    first = index.client.get(url, follow_redirects=False)
    second = index.client.get(url, follow_redirects=False)
    assert first.status_code == 307
    location = first.headers["location"]
    assert location == second.headers["location"]  # stable: pip's URL-keyed cache works
    assert location.startswith(seaweedfs.endpoint) and "X-Amz-Signature" in location
    got = httpx.get(location)
    assert got.status_code == 200 and got.content == wheel.read_bytes()
    tampered = location.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert httpx.get(tampered).status_code == 403
    # the default (streaming) mode was covered above: same URL answers 200 with the bytes


def test_multipart_presigned_on_s3(s3_index, tmp_path):
    import httpx

    from tests.conformance.test_multipart import big_wheel

    token = s3_index.token()
    c = s3_index.client
    headers = {"Authorization": f"Bearer {token}", "Content-Type": V2, "Accept": V2}
    s = open_session(c, headers, "storm", "1.0")
    wheel = big_wheel(tmp_path, "storm", 20 * 2**20)
    data = wheel.read_bytes()
    fs = start_file(
        c,
        headers,
        s,
        wheel.name,
        len(data),
        hashlib.sha256(data).hexdigest(),
        "vnd-pallet-s3multipart-presigned",
    )
    m = fs["mechanism"]
    assert len(m["parts"]) == 2 and m["parts"][0]["url"].startswith(seaweed_endpoint(s3_index))
    first = m["parts"][0]
    assert httpx.put(first["url"], content=data[: first["size"]]).status_code == 200
    listed = c.get(m["parts_url"], headers=headers).json()
    assert [p["part-number"] for p in listed] == [1]
    assert (
        c.post(fs["links"]["complete"], content=json.dumps(META), headers=headers).status_code
        == 409
    )
    second = m["parts"][1]
    assert httpx.put(second["url"], content=data[first["size"] :]).status_code == 200
    done = c.post(fs["links"]["complete"], content=json.dumps(META), headers=headers)
    assert done.status_code == 201, done.text
    assert (
        c.post(s["links"]["publish"], content=json.dumps(META), headers=headers).status_code == 201
    )
    page = c.get("/simple/storm/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert c.get(f"/simple/storm/{page.json()['files'][0]['url']}").content == data


def test_canceled_multipart_upload_is_aborted(s3_index, tmp_path):
    from tests.conformance.test_multipart import big_wheel

    c = s3_index.client
    headers = {"Authorization": f"Bearer {s3_index.token()}", "Content-Type": V2, "Accept": V2}
    s = open_session(c, headers, "gust", "1.0")
    wheel = big_wheel(tmp_path, "gust", 1024)
    data = wheel.read_bytes()
    start_file(
        c,
        headers,
        s,
        wheel.name,
        len(data),
        hashlib.sha256(data).hexdigest(),
        "vnd-pallet-s3multipart-presigned",
    )
    client = s3_index.services.store.client
    assert client.list_multipart_uploads(Bucket=s3_index.bucket).get("Uploads")
    assert c.delete(s["links"]["session"], headers=headers).status_code == 204
    assert not client.list_multipart_uploads(Bucket=s3_index.bucket).get("Uploads")


def seaweed_endpoint(index) -> str:  # noqa: ANN001
    return index.services.store.client.meta.endpoint_url


def test_multipart_assembled_by_a_complete_that_died_is_resumable(s3_index, tmp_path):
    """A replica killed inside ``complete`` after S3 assembled the parts, before it recorded
    that: the upload id is gone. Resuming must see every part stored and complete, not 500."""
    from sqlalchemy import select

    from pallet.db.models import FileUploadSession
    from pallet.db.session import read_session
    from tests.api.v2 import MULTIPART, Uploader
    from tests.conformance.test_multipart import big_wheel

    u = Uploader(s3_index, s3_index.token())
    session = u.open("reassembled", "1.0")
    wheel = big_wheel(tmp_path, "reassembled", 11 * 2**20)
    fs = u.start(session, wheel, MULTIPART)
    u.send(fs, wheel.read_bytes())
    with read_session(s3_index.services.engine) as s:
        row = s.execute(select(FileUploadSession)).scalar_one()
    store = s3_index.services.store
    parts = store.list_parts(row.staged_key, row.mechanism_state["upload-id"])
    store.complete_multipart(
        row.staged_key, row.mechanism_state["upload-id"], [p[:2] for p in parts]
    )

    listed = s3_index.client.get(fs["mechanism"]["parts_url"], headers=u.headers)
    assert listed.status_code == 200, listed.text
    assert [p["size"] for p in listed.json()] == [p["size"] for p in fs["mechanism"]["parts"]]
    done = u.complete(fs)
    assert done.status_code == 201, done.text
    u.publish(session)
    page = s3_index.client.get(
        "/simple/reassembled/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    ).json()
    assert [f["filename"] for f in page["files"]] == [wheel.name]


def _calls(store) -> list[str]:  # noqa: ANN001
    """Names of the S3 operations Pallet's client makes from now on (botocore's own events)."""
    seen: list[str] = []
    store.client.meta.events.register(
        "before-call.s3.*", lambda model, **_: seen.append(model.name)
    )
    return seen


def _presigned_file(index, tmp_path, name: str):  # noqa: ANN001, ANN202
    """A session for ``name`` 1.0 and a pre-signed file session for its wheel: (headers,
    session, the wheel's bytes, their sha256, the file session)."""
    headers = {"Authorization": f"Bearer {index.token()}", "Content-Type": V2, "Accept": V2}
    session = open_session(index.client, headers, name, "1.0")
    wheel = make_wheel(tmp_path, name, "1.0")
    data = wheel.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    fs = start_file(
        index.client, headers, session, wheel.name, len(data), sha, "vnd-pallet-presigned-put"
    )
    return headers, session, data, sha, fs


def test_complete_of_a_presigned_put_copies_nothing(s3_index, tmp_path):
    """The PUT landed at the blob's final key: complete reads the checksum the store verified
    and the archive's tail, and copies, moves and deletes nothing (both backends' behaviour is
    in test_presigned_content_address)."""
    import httpx

    store, c = s3_index.services.store, s3_index.client
    assert store.guards_content_addresses()  # SeaweedFS checks checksums and If-None-Match
    headers, s, data, sha, fs = _presigned_file(s3_index, tmp_path, "cumulus")
    m = fs["mechanism"]
    assert f"/{s3_index.bucket}/sha256/{sha[:2]}/{sha[2:4]}/{sha}?" in m["url"]
    assert httpx.put(m["url"], content=data, headers=m["headers"]).status_code == 200
    calls = _calls(store)
    done = c.post(fs["links"]["complete"], content=json.dumps(META), headers=headers)
    assert done.status_code == 201, done.text
    assert not {"CopyObject", "UploadPartCopy", "DeleteObject"} & set(calls), calls
    assert calls.count("GetObject") == 1, calls  # one ranged read of the archive's tail
    assert calls.count("HeadObject") == 1, calls  # the checksum the store verified


def test_a_store_that_does_not_guard_content_addresses_gets_staged_puts(
    s3_index, tmp_path, monkeypatch
):
    """Where the store would take a wrong body or overwrite a key (it failed the probe), a
    client's PUT goes to a staging key of its own, and complete moves the verified bytes."""
    import httpx

    store, c = s3_index.services.store, s3_index.client
    monkeypatch.setattr(store, "_probe_guards", lambda: False)
    headers, _, data, sha, fs = _presigned_file(s3_index, tmp_path, "altostratus")
    m = fs["mechanism"]
    assert f"/{s3_index.bucket}/staging/" in m["url"]
    assert store.content_guards_known and not store.guards_content_addresses()
    assert httpx.put(m["url"], content=data, headers=m["headers"]).status_code == 200
    done = c.post(fs["links"]["complete"], content=json.dumps(META), headers=headers)
    assert done.status_code == 201, done.text
    assert f"sha256/{sha[:2]}/{sha[2:4]}/{sha}" in s3_index.objects()
    assert not any(k.startswith("staging/") for k in s3_index.objects())
