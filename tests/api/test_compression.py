"""Compressed simple pages: gzip bodies made once per build from the page cache, chosen by
``Accept-Encoding``, with their own ETags, ``Vary: Accept-Encoding`` and 304s; small pages and
downloads are never compressed."""

from __future__ import annotations

import gzip
import json

import pytest

from pallet.index import cache
from tests.api.uploads import upload
from tests.dists import make_wheel

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
V2 = "application/vnd.pypi.upload.v2+json"
FORMATS = (JSON, HTML, "text/html")


def raw_get(client, url: str, method: str = "GET", **headers: str):  # noqa: ANN001, ANN201
    """The response with its body as sent: no decoding of Content-Encoding by the client."""
    url, _, fmt = url.partition("?format=")
    params = {"format": fmt} if fmt else None
    with client.stream(method, url, params=params, headers=headers) as r:
        body = b"".join(r.iter_raw())
    return r, body


def _vary(r) -> list[str]:  # noqa: ANN001
    return [v.strip() for v in r.headers.get("vary", "").split(",") if v.strip()]


@pytest.fixture
def big(index, tmp_path):  # noqa: ANN001, ANN201
    """A project whose pages (HTML and JSON) are well over the compression threshold."""
    token = index.token()
    for version in ("1.0", "1.1", "1.2", "1.3", "2.0"):
        (tmp_path / version).mkdir()
        wheel = make_wheel(tmp_path / version, "big-pkg", version)
        assert (
            upload(index.client, wheel, token, name="big-pkg", version=version).status_code == 200
        )
    for fmt in FORMATS:
        r, body = raw_get(
            index.client, f"/simple/big-pkg/?format={fmt}", **{"Accept-Encoding": "identity"}
        )
        assert r.status_code == 200, body
        assert len(body) > cache.COMPRESS_MIN, (fmt, len(body))
    return "/simple/big-pkg/"


@pytest.mark.parametrize("fmt", FORMATS)
def test_gzip_body_is_the_identity_body_compressed(index, big, fmt):
    plain, identity = raw_get(index.client, big, Accept=fmt, **{"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    r, body = raw_get(index.client, big, Accept=fmt, **{"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["content-type"].split(";")[0] == fmt
    assert int(r.headers["content-length"]) == len(body) < len(identity)
    assert gzip.decompress(body) == identity
    if fmt == JSON:
        assert json.loads(gzip.decompress(body))["name"] == "big-pkg"
    # Both answers depend on Accept-Encoding (and on Accept, which chose the format).
    for answer in (plain, r):
        assert "Accept-Encoding" in _vary(answer)
        assert "Accept" in _vary(answer)
    assert r.headers["etag"] != plain.headers["etag"]
    assert r.headers["etag"] == plain.headers["etag"][:-1] + '-gz"'
    # The same bytes again (compressed once, when the page was built).
    assert raw_get(index.client, big, Accept=fmt, **{"Accept-Encoding": "gzip"})[1] == body


def test_project_list_is_compressed_too(index, big, monkeypatch):
    monkeypatch.setattr(cache, "COMPRESS_MIN", 0)
    index.services.pages._entries.clear()  # rebuilt under the lowered threshold
    for fmt in (JSON, "text/html"):
        _, identity = raw_get(
            index.client, "/simple/", Accept=fmt, **{"Accept-Encoding": "identity"}
        )
        r, body = raw_get(
            index.client, "/simple/", Accept=fmt, **{"Accept-Encoding": "gzip, deflate"}
        )
        assert r.headers["content-encoding"] == "gzip"
        assert gzip.decompress(body) == identity
        assert b"big-pkg" in identity


def test_each_encoding_revalidates_with_its_own_etag(index, big):
    gz, _ = raw_get(index.client, big, Accept=JSON, **{"Accept-Encoding": "gzip"})
    plain, _ = raw_get(index.client, big, Accept=JSON, **{"Accept-Encoding": "identity"})
    for coding, etag in (("gzip", gz.headers["etag"]), ("identity", plain.headers["etag"])):
        for sent in (etag, f"W/{etag}"):
            r, body = raw_get(
                index.client, big, Accept=JSON, **{"Accept-Encoding": coding, "If-None-Match": sent}
            )
            assert r.status_code == 304, (coding, sent)
            assert body == b""
            assert r.headers["etag"] == etag
            assert "Accept-Encoding" in _vary(r)


def test_an_etag_of_another_coding_is_no_match(index, big):
    """A client revalidating with the identity ETag while accepting gzip gets 200 and the gzip
    body, not a 304. This is deliberate.

    RFC 9110 first selects the representation (here by ``Accept-Encoding``: gzip, which we
    prefer whenever the client takes it), then compares ``If-None-Match`` with the *selected*
    representation's ETag (§13.1.2, §13.2.1); gzip and identity bodies are different
    representations with different ETags (§8.8.3.3). Answering 304 with the identity ETag would
    also be lawful (identity is always acceptable), and would save one body. But it would pin
    every cache that first stored the identity body, such as a CDN that was first asked by curl,
    to the uncompressed page for all its gzip clients, for as long as the page does not change:
    the opposite of what compression is for. The 200 costs one compressed body, once; the
    client then holds the gzip ETag and revalidates with it.

    pip and uv never send such a mix: pip's CacheControl keeps each response with the values
    of the request headers its ``Vary`` names, uses (and revalidates) a stored response only
    for a request with the same ``Accept-Encoding``, and pip always sends ``gzip, deflate``;
    uv's cache does the same with its constant ``Accept-Encoding``. They get 304s, as the test
    above shows. A cache holding several variants lists all their ETags (RFC 9111 §4.3.1) and
    gets the 304 for the one selected, as below.

    The reverse case is a 200 on any reading: a client holding the gzip ETag that no longer
    accepts gzip cannot use the body it holds."""
    gz, _ = raw_get(index.client, big, Accept=JSON, **{"Accept-Encoding": "gzip"})
    plain, _ = raw_get(index.client, big, Accept=JSON, **{"Accept-Encoding": "identity"})
    r, body = raw_get(
        index.client,
        big,
        Accept=JSON,
        **{"Accept-Encoding": "gzip", "If-None-Match": plain.headers["etag"]},
    )
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["etag"] == gz.headers["etag"]
    assert json.loads(gzip.decompress(body))["name"] == "big-pkg"
    # Both ETags listed (a cache holding both variants): the selected one matches.
    both = f"{plain.headers['etag']}, {gz.headers['etag']}"
    r, _ = raw_get(
        index.client, big, Accept=JSON, **{"Accept-Encoding": "gzip", "If-None-Match": both}
    )
    assert r.status_code == 304
    assert r.headers["etag"] == gz.headers["etag"]
    r, body = raw_get(
        index.client,
        big,
        Accept=JSON,
        **{"Accept-Encoding": "identity", "If-None-Match": gz.headers["etag"]},
    )
    assert r.status_code == 200
    assert "content-encoding" not in r.headers
    assert json.loads(body)["name"] == "big-pkg"


@pytest.mark.parametrize(
    ("accept_encoding", "compressed"),
    [
        ("gzip", True),
        ("gzip, deflate, br, zstd", True),  # what httpx / browsers send (br without brotli)
        ("GZIP", True),
        ("x-gzip", True),
        ("*", True),
        ("identity;q=0.5, gzip", True),
        ("identity;q=0, gzip;q=0.1", True),
        ("gzip;q=0", False),
        ("gzip;q=0, *", False),
        ("identity", False),
        ("gzip;q=0.5, identity", False),
        ("deflate", False),
        ("br", False) if "br" not in cache.CODECS else ("br", True),
        ("", False),
        ("*;q=0", False),  # refuses identity too: identity is still what we can send
    ],
)
def test_accept_encoding_is_honoured(index, big, accept_encoding, compressed):
    r, body = raw_get(index.client, big, Accept=JSON, **{"Accept-Encoding": accept_encoding})
    assert r.status_code == 200
    assert ("content-encoding" in r.headers) is compressed
    if not compressed:
        assert json.loads(body)["name"] == "big-pkg"
    assert r.headers["etag"].endswith(('-gz"', '-br"') if compressed else '-j"')


def test_no_accept_encoding_gets_identity(index, big):
    # httpx always sends one; a raw ASGI request with none is what curl (no --compressed) sends.
    r, body = raw_get(index.client, big, Accept=JSON, **{"Accept-Encoding": ""})
    assert "content-encoding" not in r.headers
    assert json.loads(body)["name"] == "big-pkg"


def test_head_has_the_headers_of_get(index, big):
    for coding in ("gzip", "identity"):
        get, body = raw_get(index.client, big, Accept=JSON, **{"Accept-Encoding": coding})
        head, nothing = raw_get(
            index.client, big, "HEAD", Accept=JSON, **{"Accept-Encoding": coding}
        )
        assert head.status_code == 200
        assert nothing == b""
        for name in ("content-encoding", "content-length", "etag", "vary", "content-type"):
            assert head.headers.get(name) == get.headers.get(name), (coding, name)
        assert int(head.headers["content-length"]) == len(body)


def test_small_pages_are_not_compressed(index, tmp_path):
    wheel = make_wheel(tmp_path, "tiny", "1.0")
    assert upload(index.client, wheel, index.token(), name="tiny", version="1.0").status_code == 200
    for path in ("/simple/", "/simple/tiny/"):
        for fmt in FORMATS:
            r, body = raw_get(index.client, path, Accept=fmt, **{"Accept-Encoding": "gzip"})
            assert len(body) < cache.COMPRESS_MIN, (path, fmt)
            assert "content-encoding" not in r.headers
            assert "Accept-Encoding" not in _vary(r)
            assert not r.headers["etag"].endswith('-gz"')


def test_downloads_are_never_compressed(index, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "COMPRESS_MIN", 0)
    wheel = make_wheel(tmp_path, "dl", "1.0")
    assert upload(index.client, wheel, index.token(), name="dl", version="1.0").status_code == 200
    files = index.client.get("/simple/dl/", headers={"Accept": JSON}).json()["files"]
    url = files[0]["url"]
    for path in (url, url + ".metadata"):
        for method in ("GET", "HEAD"):
            r, body = raw_get(index.client, path, method, **{"Accept-Encoding": "gzip, br"})
            assert r.status_code == 200, path
            assert "content-encoding" not in r.headers
            assert "Accept-Encoding" not in _vary(r)
    _, body = raw_get(index.client, url, **{"Accept-Encoding": "gzip"})
    assert body == wheel.read_bytes()


def test_private_pages_keep_vary_authorization(make_index, tmp_path, monkeypatch):
    """Private mode: compressed pages still vary on Authorization; the list a project-limited
    token sees is built per request and sent uncompressed."""
    monkeypatch.setattr(cache, "COMPRESS_MIN", 0)
    index = make_index(private=True)
    upload_token = index.token()
    wheel = make_wheel(tmp_path, "alpha", "1.0")
    assert upload(index.client, wheel, upload_token, name="alpha", version="1.0").status_code == 200
    reader = index.token(scope="read")
    limited = index.token(scope="read", projects=["alpha"])
    auth = {"Accept-Encoding": "gzip", "Accept": JSON}
    for path in ("/simple/", "/simple/alpha/"):
        r, body = raw_get(index.client, path, **auth, Authorization=f"Bearer {reader}")
        assert r.headers["content-encoding"] == "gzip", path
        assert {"Accept", "Authorization", "Accept-Encoding"} <= set(_vary(r))
        assert r.headers["cache-control"].startswith("private")
        assert json.loads(gzip.decompress(body))
    r, body = raw_get(index.client, "/simple/", **auth, Authorization=f"Bearer {limited}")
    assert "content-encoding" not in r.headers
    assert [p["name"] for p in json.loads(body)["projects"]] == ["alpha"]
    assert set(_vary(r)) == {"Accept", "Authorization"}


def test_stage_pages_are_compressed_and_not_stored(index, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "COMPRESS_MIN", 0)
    headers = {"Authorization": f"Bearer {index.token()}", "Content-Type": V2, "Accept": V2}
    body = {"meta": {"api-version": "2.0"}, "name": "staged-pkg", "version": "1.0"}
    r = index.client.post("/upload/2.0/", content=json.dumps(body), headers=headers)
    assert r.status_code == 201, r.text
    stage = r.json()["links"]["stage"]
    for url in (stage, stage + "staged-pkg/"):
        _, identity = raw_get(index.client, url, Accept=JSON, **{"Accept-Encoding": "identity"})
        r, raw = raw_get(index.client, url, Accept=JSON, **{"Accept-Encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip"
        assert r.headers["cache-control"] == "no-store"
        assert gzip.decompress(raw) == identity
