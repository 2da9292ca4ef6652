"""Absolute URLs never come from an unchecked Host header: ``--base-url`` fixes them, or the Host
must be allowed; redirects are relative."""

from __future__ import annotations

import hashlib
import json

import pytest

from pallet.public_url import host_name, is_allowed
from tests.api.uploads import upload
from tests.dists import make_wheel

V2 = "application/vnd.pypi.upload.v2+json"
EVIL = {"Host": "evil.example"}


def create_session(index, token: str, headers: dict[str, str]):  # noqa: ANN001, ANN201
    body = {"meta": {"api-version": "2.0"}, "name": "hosted", "version": "1.0"}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": V2, "Accept": V2, **headers}
    return index.client.post("/upload/2.0/", content=json.dumps(body), headers=headers)


@pytest.mark.parametrize(
    "path", ["/", "/simple/", "/_/upload-api", "/pypi/hosted/json", "/_/health"]
)
def test_a_host_not_allowed_is_refused_before_any_handler(index, path: str) -> None:
    r = index.client.get(path, headers=EVIL)
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:pallet:problem:host-not-allowed"
    assert "evil.example" not in r.headers.get("location", "")
    assert create_session(index, index.token(), EVIL).status_code == 400


def test_base_url_is_the_base_of_every_absolute_url(make_index, tmp_path) -> None:  # noqa: ANN001
    index = make_index(base_url="https://pypi.example.com/")
    token = index.token()
    wheel = make_wheel(tmp_path, "hosted", "0.9")
    assert upload(index.client, wheel, token, name="hosted", version="0.9").status_code == 200
    session = create_session(index, token, EVIL)
    assert session.status_code == 201, session.text
    links = session.json()["links"]
    assert all(url.startswith("https://pypi.example.com/") for url in links.values()), links
    discovery = index.client.get("/_/upload-api", headers=EVIL).json()
    assert all(
        discovery[k].startswith("https://pypi.example.com/")
        for k in ("upload-2.0", "legacy", "simple")
    )
    files = index.client.get("/pypi/hosted/json", headers=EVIL).json()["urls"]
    assert files and all(f["url"].startswith("https://pypi.example.com/files/") for f in files)
    data = wheel.read_bytes()
    reserve = index.client.post(
        "/direct/reserve",
        headers={**EVIL, "Authorization": f"Bearer {token}"},
        data={
            ":action": "file_upload",
            "protocol_version": "1",
            "name": "hosted",
            "version": "1.1",
            "filetype": "bdist_wheel",
            "pyversion": "py3",
            "metadata_version": "2.4",
            "sha256_digest": hashlib.sha256(data + b"x").hexdigest(),
            "filename": "hosted-1.1-py3-none-any.whl",
        },
    )
    assert reserve.status_code == 201, reserve.text
    assert reserve.json()["upload_url"].startswith("https://pypi.example.com/")


def test_redirects_are_relative(index) -> None:  # noqa: ANN001
    r = index.client.get("/simple/Some.Name?format=text/html", follow_redirects=False)
    assert r.status_code == 301
    assert r.headers["location"] == "/simple/some-name/?format=text/html"


@pytest.mark.parametrize(
    ("header", "patterns", "allowed"),
    [
        ("pypi.corp:8443", ("pypi.corp",), True),
        ("PYPI.corp", ("pypi.corp",), True),
        ("a.pypi.corp", ("*.pypi.corp",), True),
        ("pypi.corp.evil", ("*.pypi.corp",), False),
        ("[::1]:8000", ("::1",), True),
        ("evil.example", ("localhost", "127.0.0.1"), False),
        ("", ("localhost",), False),
        ("anything", ("*",), True),
    ],
)
def test_host_patterns(header: str, patterns: tuple[str, ...], allowed: bool) -> None:
    assert is_allowed(host_name(header), patterns) is allowed
