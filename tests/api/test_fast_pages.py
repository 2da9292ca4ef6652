"""``FastPages``: cached simple pages answered in front of the app must be the app's answers,
byte for byte and header for header, and everything else must reach the app."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from pallet import telemetry
from pallet.app import create_app
from pallet.index import cache
from pallet.index.fast import FastPages
from tests.api.uploads import upload
from tests.dists import make_wheel

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"


class Counting:
    """The app, counting the requests that reach it."""

    def __init__(self, app: Any) -> None:
        self.app, self.paths = app, []

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


@pytest.fixture
def pair(index, tmp_path) -> Iterator[tuple[TestClient, TestClient, Counting]]:  # noqa: ANN001
    """The fixture's app (plain) and a second app over the same services behind FastPages,
    with two projects published: one page big enough to be compressed, one small."""
    token = index.token()
    for name, versions in (("big-pkg", ("1.0", "1.1", "1.2", "2.0")), ("tiny", ("1.0",))):
        for version in versions:
            (tmp_path / name / version).mkdir(parents=True)
            wheel = make_wheel(tmp_path / name / version, name, version)
            r = upload(index.client, wheel, token, name=name, version=version)
            assert r.status_code == 200, r.text
    counting = Counting(create_app(services=index.services))
    fast = TestClient(FastPages(counting, index.services)).__enter__()
    try:
        yield index.client, fast, counting
    finally:
        fast.__exit__(None, None, None)


def _seen(client: TestClient, method: str, path: str, headers: dict[str, str]) -> tuple:
    with client.stream(method, path, headers=headers) as r:
        body = b"".join(r.iter_raw())
    return r.status_code, sorted(r.headers.multi_items()), body


PATHS = [
    "/simple/",
    "/simple/big-pkg/",
    "/simple/tiny/",
    "/simple/Big_Pkg/",
    "/simple/big-pkg",
    "/simple/nope/",
    "/simple/big-pkg/?format=" + JSON,
    "/simple//",
    "/simple/big-pkg/x/",
]
ACCEPTS = [None, JSON, HTML, "text/html", "image/png", "text/*;q=0.5, application/*"]
ENCODINGS = ["", "gzip", "identity", "br;q=0, gzip;q=0.5", "*;q=0"]


def test_same_answers_as_the_app(pair) -> None:  # noqa: ANN001
    plain, fast, counting = pair
    for path, accept, encoding, method in itertools.product(
        PATHS, ACCEPTS, ENCODINGS, ("GET", "HEAD")
    ):
        headers = {"Accept-Encoding": encoding}
        if accept is not None:
            headers["Accept"] = accept
        for _ in range(2):  # the first may build the page; the second finds it cached
            expected = _seen(plain, method, path, headers)
            assert _seen(fast, method, path, headers) == expected, (method, path, headers)
        etag = dict(expected[1]).get("etag")
        for validator in filter(None, (etag, f"W/{etag}" if etag else None, '"nope"', "*")):
            conditional = {**headers, "If-None-Match": validator}
            expected = _seen(plain, method, path, conditional)
            assert _seen(fast, method, path, conditional) == expected, (path, conditional)


def test_cached_pages_do_not_reach_the_app(pair) -> None:  # noqa: ANN001
    _plain, fast, counting = pair
    for path in ("/simple/", "/simple/big-pkg/"):
        fast.get(path, headers={"Accept": JSON})  # built (and cached) by the app
        counting.paths.clear()
        for accept, encoding in itertools.product((JSON, HTML, "text/html"), ("gzip", "")):
            r = fast.get(path, headers={"Accept": accept, "Accept-Encoding": encoding})
            assert r.status_code == 200
        r = fast.get(path, headers={"If-None-Match": r.headers["etag"], "Accept-Encoding": ""})
        assert r.status_code == 304
        assert counting.paths == [], path
    # What FastPages leaves to the app reaches it.
    for path in ("/simple/Big_Pkg/", "/simple/big-pkg/?format=" + JSON, "/simple/nope/"):
        counting.paths.clear()
        fast.get(path, follow_redirects=False)
        assert counting.paths == [path.split("?")[0]]
    counting.paths.clear()
    assert fast.get("/simple/big-pkg/", headers={"Host": "elsewhere.example"}).status_code == 400
    assert fast.get("/simple/big-pkg/", headers={"Accept": "image/png"}).status_code == 406
    assert counting.paths == ["/simple/big-pkg/", "/simple/big-pkg/"]


def test_a_publish_shows_on_the_next_request(pair, index, tmp_path) -> None:  # noqa: ANN001
    _plain, fast, counting = pair
    before = fast.get("/simple/big-pkg/", headers={"Accept": JSON}).json()["versions"]
    wheel = make_wheel(tmp_path, "big-pkg", "3.0")
    assert upload(index.client, wheel, index.token(), name="big-pkg", version="3.0").status_code
    counting.paths.clear()
    after = fast.get("/simple/big-pkg/", headers={"Accept": JSON}).json()["versions"]
    assert after == [*before, "3.0"]
    assert counting.paths == ["/simple/big-pkg/"]  # the stale page went to the app to rebuild


def _count(route: str, status: str) -> float:
    value = telemetry.REGISTRY.get_sample_value(
        "pallet_http_requests_total", {"route": route, "method": "GET", "status": status}
    )
    return value or 0.0


def test_requests_are_counted_as_the_app_counts_them(pair) -> None:  # noqa: ANN001
    _plain, fast, _counting = pair
    fast.get("/simple/big-pkg/")
    fast.get("/simple/")
    page, listing = _count("/simple/{project}/", "200"), _count("/simple/", "200")
    etag = fast.get("/simple/big-pkg/").headers["etag"]
    fast.get("/simple/")
    fast.get("/simple/big-pkg/", headers={"If-None-Match": etag})
    assert _count("/simple/{project}/", "200") == page + 1
    assert _count("/simple/", "200") == listing + 1
    assert _count("/simple/{project}/", "304") >= 1


def test_a_database_outage_is_the_apps_503(pair, index, monkeypatch) -> None:  # noqa: ANN001
    _plain, fast, _counting = pair
    assert fast.get("/simple/big-pkg/").status_code == 200

    async def down(name: str) -> None:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(index.services.lookup, "project_async", down)
    r = fast.get("/simple/big-pkg/")
    assert r.status_code == 503
    assert r.headers["retry-after"]


@pytest.mark.parametrize("setting", [{"private": True}, {"inject_503": "legacy:1"}])
def test_off_where_every_request_needs_the_app(make_index, setting) -> None:  # noqa: ANN001
    index = make_index(**setting)
    assert not FastPages(create_app(services=index.services), index.services).enabled


def test_small_threshold_pages_too(pair, monkeypatch) -> None:  # noqa: ANN001
    """Pages compressed at any size (the threshold lowered) still match the app's answers."""
    plain, fast, _counting = pair
    monkeypatch.setattr(cache, "COMPRESS_MIN", 0)
    fast.app.services.pages._entries.clear()
    for path in ("/simple/", "/simple/tiny/"):
        headers = {"Accept": JSON, "Accept-Encoding": "gzip"}
        _seen(plain, "GET", path, headers)
        assert _seen(fast, "GET", path, headers) == _seen(plain, "GET", path, headers)
        assert dict(_seen(fast, "GET", path, headers)[1])["content-encoding"] == "gzip"
