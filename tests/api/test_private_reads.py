"""Who may read what: the private-mode matrix (every read path x no token / another project's
token / the right token), stages that serve only their own session's project, and metrics."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.api.uploads import upload
from tests.dists import make_wheel

V2 = "application/vnd.pypi.upload.v2+json"
JSON = "application/vnd.pypi.simple.v1+json"


def open_session(index, token: str, name: str) -> str:  # noqa: ANN001
    """A publishing session for ``name``; returns its stage URL (a path)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": V2, "Accept": V2}
    body = {"meta": {"api-version": "2.0"}, "name": name, "version": "2.0"}
    r = index.client.post("/upload/2.0/", content=json.dumps(body), headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["links"]["stage"]


def published(index, tmp_path: Path, name: str) -> tuple[str, str]:  # noqa: ANN001
    """Publish ``name`` 1.0 as a wheel; returns (its file URL path, its sha256)."""
    wheel = make_wheel(tmp_path / name, name, "1.0")
    r = upload(index.client, wheel, index.token(), name=name, version="1.0")
    assert r.status_code == 200, r.text
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return f"/files/{sha}/{wheel.name}", sha


def read_paths(index, tmp_path: Path) -> dict[str, str]:  # noqa: ANN001
    """Every read path of project ``alpha`` (published 1.0, a stage for 2.0)."""
    file_url, sha = published(index, tmp_path, "alpha")
    stage = open_session(index, index.token(projects=["alpha"]), "alpha")
    stage_path = stage.split("://", 1)[-1].split("/", 1)[1]
    filename = file_url.rsplit("/", 1)[1]
    return {
        "simple project": "/simple/alpha/",
        "file": file_url,
        "metadata": file_url + ".metadata",
        "json": "/pypi/alpha/json",
        "json version": "/pypi/alpha/1.0/json",
        "stage index": f"/{stage_path}",
        "stage project": f"/{stage_path}alpha/",
        "stage file": f"/{stage_path.removesuffix('simple/')}files/{sha}/{filename}",
        "stage metadata": f"/{stage_path.removesuffix('simple/')}files/{sha}/{filename}.metadata",
    }


def test_private_mode_matrix(make_index, tmp_path: Path) -> None:
    index = make_index(private=True)
    paths = read_paths(index, tmp_path)
    right = index.token(scope="read", projects=["alpha"])
    other = index.token(scope="read", projects=["beta"])
    matrix = {}
    for label, path in paths.items():
        anonymous = index.client.get(path)
        assert anonymous.status_code == 401, (label, anonymous.text)
        assert anonymous.headers["content-type"] == "application/problem+json"
        wrong = index.client.get(path, auth=("__token__", other))
        assert wrong.status_code == 403, (label, wrong.text)
        ok = index.client.get(path, auth=("__token__", right))
        assert ok.status_code == 200, (label, ok.text)
        # An answer for one token must never be kept by a shared cache for another.
        cache_control = ok.headers.get("cache-control", "")
        assert "private" in cache_control or "no-store" in cache_control, (label, cache_control)
        matrix[label] = (anonymous.status_code, wrong.status_code, ok.status_code)
    assert len(matrix) == 9
    # Whole-index reads: a token for one project sees only that project, and none of the rest.
    listing = index.client.get("/simple/", auth=("__token__", right), headers={"Accept": JSON})
    assert [p["name"] for p in listing.json()["projects"]] == ["alpha"]
    assert index.client.get("/simple/").status_code == 401
    assert index.client.get("/_/upload-api").status_code == 401


def test_private_index_does_not_tell_its_version(make_index) -> None:
    from pallet import __version__

    index = make_index(private=True)
    for path in ("/", "/_/health"):
        assert __version__ not in index.client.get(path).text
    public = make_index()
    assert __version__ in public.client.get("/").text


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
def test_a_stage_serves_only_its_own_project(make_index, tmp_path: Path, private: bool) -> None:
    index = make_index(private=private)
    secret_url, secret_sha = published(index, tmp_path, "projb")
    own_url, own_sha = published(index, tmp_path, "proja")
    mine = index.token(projects=["proja"])
    stage = open_session(index, mine, "proja")
    base = stage.split("://", 1)[-1].split("/", 1)[1].removesuffix("simple/")
    filename = secret_url.rsplit("/", 1)[1]
    auth = ("__token__", mine) if private else None
    for suffix in ("", ".metadata"):
        r = index.client.get(f"/{base}files/{secret_sha}/{filename}{suffix}", auth=auth)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"] == "application/problem+json"
    # The session's own project's published files are served (the stage shows the release as
    # it would look published): proja 1.0 is reachable through proja's stage.
    r = index.client.get(f"/{base}files/{own_sha}/{own_url.rsplit('/', 1)[1]}", auth=auth)
    assert r.status_code == 200


def test_metrics_need_a_whole_index_reader_or_the_scrape_credential(make_index) -> None:
    private = make_index(private=True)
    assert private.client.get("/_/metrics").status_code == 401
    one_project = private.token(scope="read", projects=["alpha"])
    assert private.client.get("/_/metrics", auth=("__token__", one_project)).status_code == 403
    everything = private.token(scope="read")
    assert private.client.get("/_/metrics", auth=("__token__", everything)).status_code == 200

    scraped = make_index(metrics_token="scrape-me-please")  # noqa: S106 - a test credential
    assert scraped.client.get("/_/metrics").status_code == 401
    bearer = {"Authorization": "Bearer scrape-me-please"}
    assert scraped.client.get("/_/metrics", headers=bearer).status_code == 200
    wrong = {"Authorization": "Bearer scrape-me-not"}
    assert scraped.client.get("/_/metrics", headers=wrong).status_code == 401

    assert make_index().client.get("/_/metrics").status_code == 200  # a public index
