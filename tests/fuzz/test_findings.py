"""What the fuzz suite found, pinned as plain tests once fixed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.api.uploads import upload
from tests.dists import core_metadata, make_sdist, make_wheel
from tests.fuzz.world import META, PROJECT

HUGE_VERSION = "1." + "9" * 5000  # int() of the segment is past Python's 4300-digit limit


def _problem(r, status: int = 400) -> dict:  # noqa: ANN001
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    return body


@pytest.mark.parametrize("token_kind", ["upload", "import"])
@pytest.mark.parametrize("builder", [make_wheel, make_sdist])
def test_legacy_upload_of_a_dist_whose_metadata_version_cannot_be_converted(
    make_world,
    tmp_path: Path,
    token_kind: str,
    builder,  # noqa: ANN001
) -> None:
    """Found by test_legacy_form: METADATA ``Version: 1.999…`` (5,000 digits) was a 500
    (ValueError from int() inside packaging), under PyPI's rules and the import rules."""
    world, fuzzer = make_world()
    dist = builder(tmp_path, PROJECT, "3.0", metadata=core_metadata(PROJECT, HUGE_VERSION))
    before = fuzzer.snapshot()
    r = upload(world.client, dist, world.tokens[token_kind], name=PROJECT, version="3.0")
    body = _problem(r)
    assert body["type"] == "urn:pallet:problem:invalid-metadata"
    assert "not a valid version" in body["detail"]
    after = fuzzer.snapshot()
    assert after.rows == before.rows and after.blobs == before.blobs
    assert not list(world.services.settings.tmp_dir.iterdir())


def test_upload2_complete_and_direct_finalize_of_such_a_dist(make_world, tmp_path: Path) -> None:
    world, _fuzzer = make_world()
    dist = make_wheel(
        tmp_path,
        PROJECT,
        world.version,
        metadata=core_metadata(PROJECT, HUGE_VERSION),
        tag="py3-none-win32",
    )
    data = dist.read_bytes()
    r = world.v2(
        "POST",
        world.session_path() + "files/",
        {
            "filename": dist.name,
            "size": len(data),
            "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
            "mechanism": "http-post-bytes",
        },
    )
    assert r.status_code == 202, r.text
    fs = r.json()
    sent = world.client.post(
        fs["mechanism"]["file_url"],
        content=data,
        headers={**world.auth, "Content-Type": "application/octet-stream"},
    )
    assert sent.status_code == 204, sent.text
    body = _problem(world.v2("POST", fs["links"]["complete"], {}))
    assert body["type"] == "urn:pallet:problem:invalid-metadata"
    assert body["meta"] == META
    assert world.v2("GET", fs["links"]["file-upload-session"]).json()["status"] == "error"

    # uv publish --direct: reserve, PUT, finalize
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": PROJECT,
        "version": world.version,
        "filetype": "bdist_wheel",
        "pyversion": "py3",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "filename": dist.name,
    }
    auth = ("__token__", world.tokens["upload"])
    reserved = world.client.post(
        "/direct/reserve", files={k: (None, v) for k, v in fields.items()}, auth=auth
    )
    assert reserved.status_code == 201, reserved.text
    target = reserved.json()
    if target["upload_url"]:
        put = world.client.put(
            target["upload_url"],
            content=data,
            headers={**target["upload_headers"], "Content-Type": "application/octet-stream"},
        )
        assert put.status_code == 200, put.text
    finalized = world.client.post(
        "/direct/finalize", files={k: (None, v) for k, v in fields.items()}, auth=auth
    )
    assert _problem(finalized)["type"] == "urn:pallet:problem:invalid-metadata"


@pytest.mark.parametrize("private", [False, True])
def test_download_of_a_filename_with_a_nul(make_world, private: bool) -> None:  # noqa: ANN001
    """Found by test_every_endpoint on PostgreSQL: ``/files/<sha256>/<name with %00>`` (and the
    stage's file route, which falls back to the same lookup) reached SQL with the NUL: a 500."""
    world, fuzzer = make_world(private=private)
    published = world.published[0]
    auth = world.auth_headers()["read"]
    for path in (
        f"/files/{published.sha256}/{published.name[:7]}%00{published.name[7:]}",
        f"/files/{published.sha256}/{published.name}%00.metadata",
        f"/stage/{world.stage_token}/files/{published.sha256}/%00{published.name}",
    ):
        r = world.client.get(path, headers=auth)
        assert _problem(r, 404)["type"] == "urn:pallet:problem:not-found"
    assert (
        world.client.get(f"/files/{published.sha256}/{published.name}", headers=auth).status_code
        == 200
    )
    assert fuzzer.logs.take() == []
