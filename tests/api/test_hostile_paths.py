"""Path parameters and credentials the fuzz suite once turned into 500s: a NUL (which PostgreSQL
refuses in text) or a non-ASCII byte must be a 4xx problem on every database."""

from __future__ import annotations

import json

import pytest

V2 = "application/vnd.pypi.upload.v2+json"


def assert_problem(r, status: int) -> None:  # noqa: ANN001
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "path",
    [
        "/upload/2.0/sessions/ab%00cd/",
        "/upload/2.0/sessions/%C3%A9/",
        "/stage/ab%00cd/simple/",
        "/stage/%00/files/" + "0" * 64 + "/x.whl",
        "/pypi/ab%00cd/json",
        "/pypi/abc/1.0%00/json",
    ],
)
def test_nul_and_non_ascii_path_parameters_are_404(index, path: str) -> None:  # noqa: ANN001
    headers = {"Authorization": f"Bearer {index.token()}", "Accept": V2}
    assert_problem(index.client.get(path, headers=headers), 404)


def test_a_nul_in_a_token_is_401(index) -> None:  # noqa: ANN001
    r = index.client.post("/legacy/", headers={"Authorization": "Bearer pallet_00000000000000\x00_x"})
    assert_problem(r, 401)


def test_a_mechanism_endpoint_refuses_files_of_another_mechanism(index, tmp_path) -> None:  # noqa: ANN001
    token = index.token()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": V2, "Accept": V2}
    body = {"meta": {"api-version": "2.0"}, "name": "mixed", "version": "1.0"}
    session = index.client.post("/upload/2.0/", content=json.dumps(body), headers=headers).json()
    create = {
        "meta": {"api-version": "2.0"},
        "filename": "mixed-1.0-py3-none-any.whl",
        "size": 10,
        "hashes": {"sha256": "0" * 64},
        "mechanism": "http-post-bytes",
    }
    r = index.client.post(session["links"]["upload"], content=json.dumps(create), headers=headers)
    assert r.status_code == 202, r.text
    parts = r.json()["links"]["file-upload-session"] + "parts"
    assert_problem(index.client.get(parts, headers=headers), 404)


def test_names_and_versions_longer_than_the_index_stores_are_400(index, tmp_path) -> None:  # noqa: ANN001
    """PostgreSQL refuses strings past their columns (a 500); SQLite would store them."""
    from tests.api.uploads import upload
    from tests.dists import core_metadata, make_wheel

    headers = {"Authorization": f"Bearer {index.token()}", "Content-Type": V2, "Accept": V2}
    for body in (
        {"name": "a" * 201, "version": "1.0"},
        {"name": "long-version", "version": "1.0.post" + "1" * 120},
    ):
        r = index.client.post(
            "/upload/2.0/",
            content=json.dumps({"meta": {"api-version": "2.0"}, **body}),
            headers=headers,
        )
        assert_problem(r, 400)
    name = "b" * 201
    wheel = make_wheel(tmp_path, "short", "1.0", metadata=core_metadata(name, "1.0"))
    r = upload(index.client, wheel, index.token(), name="short", version="1.0")
    assert_problem(r, 400)
    assert "longer than 200" in r.json()["detail"]
