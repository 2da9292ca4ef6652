"""The read path: content negotiation, redirects, caching headers, freshness after publish,
yanking, private mode, downloads with ranges and the JSON API."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from pallet.releases import set_yanked
from tests.api.uploads import upload
from tests.dists import make_sdist, make_wheel

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
V2 = "application/vnd.pypi.upload.v2+json"


@pytest.fixture
def published(index, tmp_path):  # noqa: ANN001, ANN201
    token = index.token()
    paths = {}
    for version in ("1.0", "2.0"):
        (tmp_path / version).mkdir()
        wheel = make_wheel(tmp_path / version, "Demo_Pkg", version)
        assert (
            upload(index.client, wheel, token, name="Demo_Pkg", version=version).status_code == 200
        )
        paths[version] = wheel
    return paths


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "text/html"),
        ("*/*", "text/html"),
        (JSON, JSON),
        (HTML, HTML),
        ("text/html", "text/html"),
        (f"{JSON}, {HTML};q=0.1, text/html;q=0.01", JSON),
        (f"{JSON};q=0.2, {HTML}", HTML),
        ("application/vnd.pypi.simple.latest+json", JSON),
    ],
)
def test_content_negotiation(index, published, accept, expected):
    headers = {"Accept": accept} if accept else {}
    r = index.client.get("/simple/demo-pkg/", headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == expected
    assert "Accept" in r.headers["vary"]


def test_unacceptable_accept_is_406_problem(index, published):
    r = index.client.get("/simple/demo-pkg/", headers={"Accept": "application/xml"})
    assert r.status_code == 406
    assert r.json()["type"] == "urn:pallet:problem:not-acceptable"


LATEST_JSON = "application/vnd.pypi.simple.latest+json"
LATEST_HTML = "application/vnd.pypi.simple.latest+html"


@pytest.mark.parametrize("path", ["/simple/", "/simple/demo-pkg/"])
@pytest.mark.parametrize(
    ("fmt", "accept", "expected"),
    [
        (JSON, HTML, JSON),
        (JSON, None, JSON),
        (HTML, JSON, HTML),
        (LATEST_JSON, "text/html", JSON),
        (LATEST_HTML, JSON, HTML),
        ("text/html", JSON, "text/html"),
        (" Application/VND.pypi.simple.v1+JSON ", "text/html", JSON),
        # ?format= wins even over an Accept that alone would be a 406.
        (JSON, "application/xml", JSON),
    ],
)
def test_format_parameter_wins_over_accept(index, published, path, fmt, accept, expected):
    headers = {"Accept": accept} if accept else {}
    r = index.client.get(path, params={"format": fmt}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == expected
    if expected == JSON:
        assert r.json()["meta"]["api-version"]
    else:
        assert r.text.lstrip().lower().startswith("<!doctype html")
    # The answer no longer depends on Accept; the URL (query included) is the cache key.
    assert "Accept" not in [v.strip() for v in r.headers.get("vary", "").split(",")]


@pytest.mark.parametrize(
    "fmt",
    [
        "application/xml",
        "application/json",
        "*/*",
        "application/*",
        f"{JSON};q=1",
        f"{JSON}, {HTML}",
        "application/vnd.pypi.simple.v2+json",
        "",
    ],
)
def test_unsupported_format_parameter_is_406_problem(index, published, fmt):
    for path in ("/simple/", "/simple/demo-pkg/"):
        # Even with an Accept we could serve: the parameter, when given, decides.
        r = index.client.get(path, params={"format": fmt}, headers={"Accept": JSON})
        assert r.status_code == 406, (path, fmt, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        assert problem["type"] == "urn:pallet:problem:not-acceptable"
        assert problem["status"] == 406
        assert JSON in problem["detail"]


def test_repeated_format_parameter(index, published):
    same = index.client.get("/simple/demo-pkg/?format=text/html&format=text/html")
    assert same.status_code == 200
    assert same.headers["content-type"].startswith("text/html")
    r = index.client.get(f"/simple/demo-pkg/?format={JSON}&format={HTML}")
    assert r.status_code == 406
    assert r.json()["type"] == "urn:pallet:problem:not-acceptable"


def test_format_parameter_survives_redirects(index, published):
    r = index.client.get("/simple/Demo_Pkg", params={"format": JSON}, follow_redirects=False)
    assert r.status_code == 301
    location = httpx.URL(r.headers["location"])
    assert location.path == "/simple/demo-pkg/"
    assert location.params["format"] == JSON
    followed = index.client.get("/simple/Demo_Pkg", params={"format": JSON})
    assert followed.headers["content-type"].startswith(JSON)


def test_each_representation_has_its_own_etag(index, published):
    """Three representations of one URL: three ETags, so revalidating one never answers 304
    for another (the two HTML bodies are equal but their Content-Types are not)."""
    etags = {}
    for fmt in (JSON, HTML, "text/html"):
        r = index.client.get("/simple/demo-pkg/", params={"format": fmt})
        etags[fmt] = r.headers["etag"]
        # The same representation by Accept carries the same ETag.
        assert (
            index.client.get("/simple/demo-pkg/", headers={"Accept": fmt}).headers["etag"]
            == etags[fmt]
        )
    assert len(set(etags.values())) == 3
    for fmt, etag in etags.items():
        again = index.client.get(
            "/simple/demo-pkg/", params={"format": fmt}, headers={"If-None-Match": etag}
        )
        assert again.status_code == 304
        for other in {JSON, HTML, "text/html"} - {fmt}:
            r = index.client.get(
                "/simple/demo-pkg/", params={"format": other}, headers={"If-None-Match": etag}
            )
            assert r.status_code == 200
            assert r.headers["content-type"].split(";")[0] == other


def test_format_parameter_on_stage_pages(index, tmp_path):
    token = index.token()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": V2, "Accept": V2}
    body = {"meta": {"api-version": "2.0"}, "name": "staged-pkg", "version": "1.0"}
    r = index.client.post("/upload/2.0/", content=json.dumps(body), headers=headers)
    assert r.status_code == 201, r.text
    stage = r.json()["links"]["stage"]
    for url in (stage, stage + "staged-pkg/"):
        page = index.client.get(url, params={"format": JSON}, headers={"Accept": "text/html"})
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith(JSON)
        assert page.headers["vary"] == "Authorization"
        assert page.headers["cache-control"] == "no-store"
        by_accept = index.client.get(url, headers={"Accept": "text/html"})
        assert by_accept.headers["content-type"].startswith("text/html")
        assert "Accept" in by_accept.headers["vary"]
        bad = index.client.get(url, params={"format": "text/plain"})
        assert bad.status_code == 406
        assert bad.json()["type"] == "urn:pallet:problem:not-acceptable"


def test_non_normalized_names_redirect(index, published):
    for path in ("/simple/Demo_Pkg/", "/simple/demo.pkg", "/simple/demo-pkg"):
        r = index.client.get(path, follow_redirects=False)
        assert r.status_code == 301, path
        assert r.headers["location"].endswith("/simple/demo-pkg/")


def test_project_list(index, published):
    r = index.client.get("/simple/", headers={"Accept": JSON})
    assert r.json()["projects"] == [{"name": "Demo_Pkg"}]
    html = index.client.get("/simple/").text
    assert '<a href="demo-pkg/">Demo_Pkg</a>' in html


def test_unknown_project_is_404_problem(index):
    r = index.client.get("/simple/nope/")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


def test_etag_revalidation_and_freshness_after_publish(index, published, tmp_path):
    first = index.client.get("/simple/demo-pkg/", headers={"Accept": JSON})
    etag = first.headers["etag"]
    assert "must-revalidate" in first.headers["cache-control"]
    again = index.client.get("/simple/demo-pkg/", headers={"Accept": JSON, "If-None-Match": etag})
    assert again.status_code == 304
    sdist = make_sdist(tmp_path, "Demo_Pkg", "2.0")
    assert (
        upload(index.client, sdist, index.token(), name="Demo_Pkg", version="2.0").status_code
        == 200
    )
    fresh = index.client.get("/simple/demo-pkg/", headers={"Accept": JSON, "If-None-Match": etag})
    assert fresh.status_code == 200
    assert sdist.name in [f["filename"] for f in fresh.json()["files"]]
    listing = index.client.get("/simple/", headers={"Accept": JSON})
    assert listing.status_code == 200


def test_yank_release_and_file(index, published):
    set_yanked(index.services.engine, "demo-pkg", "2.0", yanked=True, reason="broken")
    files = index.client.get("/simple/demo-pkg/", headers={"Accept": JSON}).json()["files"]
    by_version = {f["filename"].split("-")[1]: f for f in files}
    assert by_version["2.0"]["yanked"] == "broken"
    assert by_version["1.0"]["yanked"] is False
    html = index.client.get("/simple/demo-pkg/").text
    assert 'data-yanked="broken"' in html
    # yanked files stay downloadable
    assert index.client.get(f"/simple/demo-pkg/{by_version['2.0']['url']}").status_code == 200
    set_yanked(index.services.engine, "demo-pkg", "2.0", yanked=False)
    files = index.client.get("/simple/demo-pkg/", headers={"Accept": JSON}).json()["files"]
    assert all(f["yanked"] is False for f in files)
    name = published["1.0"].name
    set_yanked(index.services.engine, "demo-pkg", "1.0", yanked=True, filename=name)
    files = {
        f["filename"]: f
        for f in index.client.get("/simple/demo-pkg/", headers={"Accept": JSON}).json()["files"]
    }
    assert files[name]["yanked"] is True


def test_download_ranges(index, published):
    data = published["1.0"].read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    url = f"/files/{sha}/{published['1.0'].name}"
    full = index.client.get(url)
    assert full.content == data
    assert full.headers["content-length"] == str(len(data))
    assert "immutable" in full.headers["cache-control"]
    part = index.client.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = index.client.get(url, headers={"Range": "bytes=-5"})
    assert tail.content == data[-5:]
    bad = index.client.get(url, headers={"Range": f"bytes={len(data) + 10}-"})
    assert bad.status_code == 416
    assert bad.headers["content-range"] == f"bytes */{len(data)}"
    head = index.client.head(url)
    assert head.headers["content-length"] == str(len(data))
    # the path must name the right digest, and unpublished / unknown names are 404
    assert index.client.get(f"/files/{'0' * 64}/{published['1.0'].name}").status_code == 404
    assert index.client.get(f"/files/{sha}/other-1.0-py3-none-any.whl").status_code == 404
    assert index.client.get(f"/files/{sha}/..%2F..%2Fsecret-key").status_code == 404


def test_json_api(index, published):
    r = index.client.get("/pypi/demo-pkg/json")
    assert r.status_code == 200
    body = r.json()
    assert body["info"]["name"] == "Demo_Pkg"
    assert body["info"]["version"] == "2.0"
    assert body["info"]["summary"] == "A test package"
    assert set(body["releases"]) == {"1.0", "2.0"}
    url = body["urls"][0]
    assert url["digests"]["sha256"] == hashlib.sha256(published["2.0"].read_bytes()).hexdigest()
    assert url["url"].startswith("http")
    assert index.client.get(url["url"]).status_code == 200
    v1 = index.client.get("/pypi/demo-pkg/1.0/json").json()
    assert v1["info"]["version"] == "1.0"
    assert "releases" not in v1
    assert index.client.get("/pypi/demo-pkg/9.9/json").status_code == 404
    assert index.client.get("/pypi/Demo_Pkg/json", follow_redirects=False).status_code == 301


def test_private_mode_requires_read_token(make_index, tmp_path):
    index = make_index(private=True)
    token = index.token()
    wheel = make_wheel(tmp_path, "secret", "1.0")
    assert upload(index.client, wheel, token, name="secret", version="1.0").status_code == 200
    for path in ("/simple/", "/simple/secret/", "/pypi/secret/json"):
        r = index.client.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"].startswith("Basic")
    reader = index.token(scope="read")
    r = index.client.get("/simple/secret/", auth=("__token__", reader))
    assert r.status_code == 200
    assert "private" in r.headers["cache-control"]
    other = index.token(scope="read", projects=["something-else"])
    assert index.client.get("/simple/secret/", auth=("__token__", other)).status_code == 403
    listing = index.client.get("/simple/", auth=("__token__", other), headers={"Accept": JSON})
    assert listing.json()["projects"] == []


def test_health_is_liveness_and_ready_checks_what_the_index_needs(index):
    r = index.client.get("/_/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    ready = index.client.get("/_/ready")
    assert ready.status_code == 200
    assert {"database", "storage", "spool"} <= set(ready.json()["checks"])
    assert set(ready.json()["checks"].values()) == {"ok"}


def test_unknown_route_and_method_are_problems(index):
    r = index.client.get("/nowhere")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    r = index.client.post("/simple/x/")
    assert r.status_code == 405
    assert "legacy" in r.json()["detail"]


def test_json_api_version_past_the_int_digit_limit_is_404(index, published):
    r = index.client.get("/pypi/demo-pkg/1." + "9" * 5000 + "/json")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


def test_revalidation_takes_weak_and_listed_etags(index, tmp_path):
    """A CDN that compresses a page weakens its ETag (W/"..."); it must still get its 304."""
    token = index.token()
    wheel = make_wheel(tmp_path, "tagged", "1.0")
    assert upload(index.client, wheel, token, name="tagged", version="1.0").status_code == 200
    page = index.client.get("/simple/tagged/")
    etag = page.headers["etag"]
    for sent in (etag, f"W/{etag}", f'"other", W/{etag}', "*"):
        r = index.client.get("/simple/tagged/", headers={"If-None-Match": sent})
        assert r.status_code == 304, sent
    assert index.client.get("/simple/tagged/", headers={"If-None-Match": '"s0"'}).status_code == 200
    url = page.text.split('href="', 2)[1].split('"', 1)[0].split("#", 1)[0]
    blob = index.client.get(f"/simple/tagged/{url}")
    weak = {"If-None-Match": f"W/{blob.headers['etag']}"}
    assert index.client.get(f"/simple/tagged/{url}", headers=weak).status_code == 304
