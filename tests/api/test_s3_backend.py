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
    assert s3_index.client.get("/_/health").json()["checks"]["storage"] == "ok"


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
    s = c.post(
        "/upload/2.0/",
        content=json.dumps({**META, "name": "stratus", "version": "2.0"}),
        headers=headers,
    ).json()
    wheel = make_wheel(tmp_path, "stratus", "2.0")
    data = wheel.read_bytes()
    fs = c.post(
        s["links"]["upload"],
        headers=headers,
        content=json.dumps(
            {
                **META,
                "filename": wheel.name,
                "size": len(data),
                "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                "mechanism": "http-post-bytes",
            }
        ),
    ).json()
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
    s = c.post(
        "/upload/2.0/",
        content=json.dumps({**META, "name": "cirrus", "version": "1.0"}),
        headers=headers,
    ).json()
    assert s["mechanisms"][0] == "vnd-pallet-presigned-put"
    wheel = make_wheel(tmp_path, "cirrus", "1.0")
    data = wheel.read_bytes()
    fs = c.post(
        s["links"]["upload"],
        headers=headers,
        content=json.dumps(
            {
                **META,
                "filename": wheel.name,
                "size": len(data),
                "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                "mechanism": "vnd-pallet-presigned-put",
            }
        ),
    ).json()
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
