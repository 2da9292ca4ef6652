"""Server features that exist for clients: the upload discovery document and the 503 test hook."""

from __future__ import annotations

import logging

import pytest

from pallet.core.problems import PROBLEM_MEDIA_TYPE
from pallet.faults import parse_spec
from pallet.upload import mechanisms
from tests.api.uploads import upload
from tests.dists import make_wheel

V2 = "application/vnd.pypi.upload.v2+json"


def test_discovery_document_has_absolute_upload_urls(make_index):
    index = make_index(upload_root="/up/v2/")
    r = index.client.get("/_/upload-api")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "meta": {"api-version": "2.0"},
        "upload-2.0": "http://testserver/up/v2/",
        "legacy": "http://testserver/legacy/",
        "simple": "http://testserver/simple/",
        "mechanisms": mechanisms.advertised(),
    }
    assert index.client.head("/_/upload-api").status_code == 200


def test_discovery_document_follows_private_mode(make_index):
    index = make_index(private=True)
    r = index.client.get("/_/upload-api")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic")
    reader = index.token(scope="read")
    assert index.client.get("/_/upload-api", auth=("__token__", reader)).status_code == 200


def test_parse_spec():
    faults = parse_spec("POST:/files/[^/]+/complete$, put:/_/blobs/,*:^/legacy")
    assert [f.method for f in faults] == ["POST", "PUT", "*"]
    assert faults[0].matches("post", "/upload/2.0/sessions/s/files/f/complete")
    assert not faults[0].matches("POST", "/upload/2.0/sessions/s/files/f/complete/x")
    assert faults[1].matches("PUT", "/_/blobs/abc") and not faults[1].matches("GET", "/_/blobs/a")
    assert faults[2].matches("DELETE", "/legacy/")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "bad item"),
        ("POST", "bad item"),
        ("POST:", "bad item"),
        (":/x", "bad item"),
        ("PO ST:/x", "bad item"),
        ("POST:/a,", "bad item"),
        ("GET:/a(", "bad regex"),
    ],
)
def test_parse_spec_rejects(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_spec(spec)


def test_invalid_spec_fails_at_startup(make_index):
    with pytest.raises(ValueError, match="inject-503"):
        make_index(inject_503="nonsense")


def test_injected_503_fires_once_without_running_the_endpoint(make_index, tmp_path, caplog):
    index = make_index(inject_503="POST:^/legacy/$")
    logging.getLogger("pallet").addHandler(caplog.handler)  # "pallet" may not propagate
    try:
        token = index.token()
        wheel = make_wheel(tmp_path, "flaky", "1.0")
        r = upload(
            index.client, wheel, token, name="flaky", version="1.0", url="/legacy/?sig=s3cr3t"
        )
    finally:
        logging.getLogger("pallet").removeHandler(caplog.handler)
    assert r.status_code == 503
    assert r.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert r.headers["retry-after"] == "0"
    body = r.json()
    assert body["type"] == "urn:pallet:problem:injected-fault"
    assert body["title"] == "Service unavailable (injected)"
    assert "meta" not in body  # only Upload 2.0 problems carry meta
    assert {rec.getMessage() for rec in caplog.records} == {"injected 503 for POST /legacy/"}
    assert index.spool_files() == [] and index.blob_files() == []
    assert index.client.get("/simple/flaky/").status_code == 404
    assert upload(index.client, wheel, token, name="flaky", version="1.0").status_code == 200
    assert index.client.get("/simple/flaky/").status_code == 200


def test_injected_503_filters_method_and_path(make_index):
    index = make_index(inject_503="PUT:^/simple/,*:^/upload/2\\.0/$")
    assert index.client.get("/simple/").status_code == 200  # wrong method
    assert index.client.get("/_/health").status_code == 200  # wrong path
    assert index.client.put("/simple/").status_code == 503
    assert index.client.put("/simple/").status_code == 405  # fired once: the app answers now
    r = index.client.post("/upload/2.0/", headers={"Content-Type": V2}, content=b"{}")
    assert r.status_code == 503
    assert r.json()["meta"] == {"api-version": "2.0"}
    assert index.client.post("/upload/2.0/", headers={"Content-Type": V2}).status_code == 401
