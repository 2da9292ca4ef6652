"""The legacy upload API: happy paths and every hostile input from the issue, each answered with
a 4xx problem document and leaving nothing stored or visible."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from datetime import UTC, datetime

import pytest

from pallet.db.models import DeletedFilename
from pallet.db.session import write_session
from tests.api.uploads import upload
from tests.dists import make_sdist, make_wheel

JSON = "application/vnd.pypi.simple.v1+json"


def assert_problem(response, status: int, slug: str) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["type"] == f"urn:pallet:problem:{slug}", body
    assert body["title"]
    return body


def assert_nothing_stored(index, project: str) -> None:  # noqa: ANN001
    assert index.blob_files() == []
    assert [p for p in index.spool_files() if p.is_file()] == []
    assert index.client.get(f"/simple/{project}/").status_code == 404


def test_wheel_and_sdist_upload_then_listed_with_hashes_and_metadata(index, tmp_path):
    token = index.token()
    wheel = make_wheel(tmp_path, "Acme.Widgets", "1.0", requires_python=">=3.9")
    sdist = make_sdist(tmp_path, "Acme.Widgets", "1.0")
    for dist in (wheel, sdist):
        r = upload(index.client, dist, token, name="Acme.Widgets", version="1.0")
        assert r.status_code == 200, r.text
        assert r.json()["created"] is True

    page = index.client.get("/simple/acme-widgets/", headers={"Accept": JSON})
    assert page.status_code == 200
    assert page.headers["content-type"] == JSON
    body = page.json()
    assert body["meta"]["api-version"] == "1.5"
    assert body["versions"] == ["1.0"]
    files = {f["filename"]: f for f in body["files"]}
    assert set(files) == {wheel.name, sdist.name}
    w = files[wheel.name]
    assert w["hashes"]["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert w["size"] == wheel.stat().st_size
    assert w["requires-python"] == ">=3.9"
    assert w["yanked"] is False
    assert w["upload-time"].endswith("Z")
    assert files[sdist.name]["core-metadata"] is False

    # PEP 658: the wheel's METADATA is served next to it and its hash is announced.
    meta = index.client.get(f"/simple/acme-widgets/{w['url']}.metadata")
    assert meta.status_code == 200
    with zipfile.ZipFile(wheel) as zf:
        expected = zf.read("acme_widgets-1.0.dist-info/METADATA")
    assert meta.content == expected
    assert w["core-metadata"] == {"sha256": hashlib.sha256(expected).hexdigest()}

    download = index.client.get(f"/simple/acme-widgets/{w['url']}")
    assert download.content == wheel.read_bytes()
    assert download.headers["etag"] == f'"{w["hashes"]["sha256"]}"'

    html = index.client.get("/simple/acme-widgets/", headers={"Accept": "text/html"}).text
    assert f"#sha256={w['hashes']['sha256']}" in html
    assert 'data-requires-python="&gt;=3.9"' in html
    assert "data-core-metadata=" in html


def test_identical_reupload_is_200_and_changes_nothing(index, tmp_path):
    token = index.token()
    wheel = make_wheel(tmp_path, "same", "1.0")
    assert upload(index.client, wheel, token, name="same", version="1.0").json()["created"]
    serial = index.client.get("/simple/same/").headers["etag"]
    again = upload(index.client, wheel, token, name="same", version="1.0")
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert index.client.get("/simple/same/").headers["etag"] == serial


def test_different_bytes_under_existing_filename_is_400_file_exists(index, tmp_path):
    token = index.token()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_wheel(tmp_path / "a", "dup", "1.0")
    second = make_wheel(tmp_path / "b", "dup", "1.0", files={"dup/extra.py": b"x = 1\n"})
    assert upload(index.client, first, token, name="dup", version="1.0").status_code == 200
    r = upload(index.client, second, token, name="dup", version="1.0")
    body = assert_problem(r, 400, "file-exists")
    assert "File already exists" in r.text
    assert body["detail"]
    page = index.client.get("/simple/dup/", headers={"Accept": JSON}).json()
    assert page["files"][0]["hashes"]["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()


def test_deleted_filename_cannot_be_reused(index, tmp_path):
    token = index.token()
    wheel = make_wheel(tmp_path, "gone", "1.0")
    with write_session(index.services.engine) as s:
        s.add(DeletedFilename(filename=wheel.name, deleted=datetime.now(UTC)))
    r = upload(index.client, wheel, token, name="gone", version="1.0")
    assert_problem(r, 400, "filename-reused")
    assert_nothing_stored(index, "gone")


def test_missing_token_is_401_with_challenge(index, tmp_path):
    wheel = make_wheel(tmp_path, "anon", "1.0")
    r = upload(index.client, wheel, None, name="anon", version="1.0")
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Basic")
    assert_nothing_stored(index, "anon")


def test_invalid_token_is_401(index, tmp_path):
    wheel = make_wheel(tmp_path, "anon", "1.0")
    token = index.token()
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert_problem(
        upload(index.client, wheel, forged, name="anon", version="1.0"), 401, "unauthorized"
    )
    assert_problem(
        upload(index.client, wheel, "garbage", name="anon", version="1.0"), 401, "unauthorized"
    )


def test_read_token_cannot_upload(index, tmp_path):
    wheel = make_wheel(tmp_path, "ro", "1.0")
    r = upload(index.client, wheel, index.token(scope="read"), name="ro", version="1.0")
    assert_problem(r, 403, "forbidden")
    assert_nothing_stored(index, "ro")


def test_project_scoped_token_cannot_upload_elsewhere(index, tmp_path):
    token = index.token(projects=["alpha"])
    other = make_wheel(tmp_path, "beta", "1.0")
    r = upload(index.client, other, token, name="beta", version="1.0")
    body = assert_problem(r, 403, "forbidden")
    assert "beta" in body["detail"]
    assert_nothing_stored(index, "beta")
    mine = make_wheel(tmp_path, "alpha", "1.0")
    assert upload(index.client, mine, token, name="alpha", version="1.0").status_code == 200


def test_wrong_sha256_is_rejected(index, tmp_path):
    wheel = make_wheel(tmp_path, "hashy", "1.0")
    r = upload(
        index.client, wheel, index.token(), name="hashy", version="1.0", sha256_digest="0" * 64
    )
    body = assert_problem(r, 400, "digest-mismatch")
    assert body["errors"][0]["source"] == "sha256_digest"
    assert_nothing_stored(index, "hashy")


def test_metadata_name_differs_from_filename(index, tmp_path):
    from tests.dists import core_metadata

    wheel = make_wheel(tmp_path, "real", "1.0", metadata=core_metadata("other", "1.0"))
    r = upload(index.client, wheel, index.token(), name="real", version="1.0")
    assert_problem(r, 400, "name-mismatch")
    assert_nothing_stored(index, "real")


def test_form_version_differs_from_file(index, tmp_path):
    wheel = make_wheel(tmp_path, "ver", "1.0")
    r = upload(index.client, wheel, index.token(), name="ver", version="2.0")
    assert_problem(r, 400, "version-mismatch")
    assert_nothing_stored(index, "ver")


def test_zip_bomb_wheel_is_rejected(index, tmp_path):
    zeros = b"\0" * (64 * 2**20)
    wheel = make_wheel(tmp_path, "bomb", "1.0", files={"bomb/zeros.bin": zeros})
    assert wheel.stat().st_size < 2**20
    r = upload(index.client, wheel, index.token(), name="bomb", version="1.0")
    assert_problem(r, 400, "zip-bomb")
    assert_nothing_stored(index, "bomb")


def test_truncated_wheel_is_rejected(index, tmp_path):
    wheel = make_wheel(tmp_path, "cut", "1.0")
    data = wheel.read_bytes()
    wheel.write_bytes(data[: len(data) // 2])
    r = upload(index.client, wheel, index.token(), name="cut", version="1.0")
    assert_problem(r, 400, "invalid-archive")
    assert_nothing_stored(index, "cut")


def test_random_bytes_named_whl_is_rejected(index, tmp_path):
    fake = tmp_path / "fake-1.0-py3-none-any.whl"
    fake.write_bytes(b"MZ\x90\x00 definitely not a zip file" * 100)
    r = upload(index.client, fake, index.token(), name="fake", version="1.0")
    assert_problem(r, 400, "invalid-archive")
    assert_nothing_stored(index, "fake")


def test_sdist_with_path_traversal_member_is_rejected(index, tmp_path):
    sdist = make_sdist(tmp_path, "trav", "1.0", files={"../../etc/evil": b"x"})
    r = upload(index.client, sdist, index.token(), name="trav", version="1.0")
    assert r.status_code == 400
    assert r.json()["type"] in (
        "urn:pallet:problem:unsafe-archive",
        "urn:pallet:problem:invalid-sdist",
    )
    assert_nothing_stored(index, "trav")


@pytest.mark.parametrize(
    "filename",
    [
        "../evil-1.0.tar.gz",
        "dir/evil-1.0.tar.gz",
        "dir\\evil-1.0.tar.gz",
        "evil\x00-1.0.tar.gz",
        "evil\n-1.0.tar.gz",
        "evil-1.0.zip",
        "evil-1.0.exe",
    ],
)
def test_hostile_filenames_are_rejected_before_storing(index, tmp_path, filename):
    sdist = make_sdist(tmp_path, "evil", "1.0")
    r = upload(index.client, sdist, index.token(), name="evil", version="1.0", filename=filename)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert_nothing_stored(index, "evil")


def test_oversized_file_is_413_naming_the_limit(make_index, tmp_path):
    index = make_index(max_file_size=4096)
    wheel = make_wheel(tmp_path, "big", "1.0", files={"big/data.bin": os.urandom(8192)})
    assert wheel.stat().st_size > 4096
    r = upload(index.client, wheel, index.token(), name="big", version="1.0")
    body = assert_problem(r, 413, "file-too-large")
    assert "4096" in body["detail"]
    assert_nothing_stored(index, "big")


def test_project_quota(make_index, tmp_path):
    index = make_index(project_quota=3000)
    token = index.token()
    first = make_wheel(tmp_path, "quota", "1.0")
    assert upload(index.client, first, token, name="quota", version="1.0").status_code == 200
    big = make_wheel(tmp_path, "quota", "2.0", files={"quota/d.bin": os.urandom(4096)})
    r = upload(index.client, big, token, name="quota", version="2.0")
    body = assert_problem(r, 400, "quota-exceeded")
    assert "3000" in body["detail"]


def test_upload_needs_multipart(index):
    r = index.client.post(
        "/legacy/",
        content=b"{}",
        headers={"Content-Type": "application/json"},
        auth=("__token__", index.token()),
    )
    assert_problem(r, 415, "unsupported-media-type")


def test_truncated_multipart_body(index, tmp_path):
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="content"; filename="t-1.0.tar.gz"'
        b"\r\n\r\n\x1f\x8b partial"
    )
    r = index.client.post(
        "/legacy/",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=XyZ"},
        auth=("__token__", index.token()),
    )
    assert r.status_code == 400
    assert_nothing_stored(index, "t")


def test_missing_file_part(index):
    r = index.client.post(
        "/legacy/",
        data={
            ":action": "file_upload",
            "protocol_version": "1",
            "name": "x",
            "version": "1.0",
            "filetype": "sdist",
        },
        files={"other": ("x", io.BytesIO(b"x"))},
        auth=("__token__", index.token()),
    )
    assert_problem(r, 400, "missing-file")


def test_upload_aliases_and_trailing_slash(index, tmp_path):
    token = index.token()
    for i, url in enumerate(["/legacy", "/"]):
        wheel = make_wheel(tmp_path, "alias", f"1.{i}")
        r = upload(index.client, wheel, token, name="alias", version=f"1.{i}", url=url)
        assert r.status_code == 200, (url, r.text)


def test_valid_attestations_are_stored_and_bad_ones_rejected(index, tmp_path):
    import base64
    import json

    wheel = make_wheel(tmp_path, "attested", "1.0")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()

    def attestation(name: str, digest: str) -> str:
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": name, "digest": {"sha256": digest}}],
        }
        return json.dumps(
            [
                {
                    "version": 1,
                    "verification_material": {"certificate": "", "transparency_entries": []},
                    "envelope": {
                        "statement": base64.b64encode(json.dumps(statement).encode()).decode(),
                        "signature": "",
                    },
                }
            ]
        )

    token = index.token()
    bad = upload(
        index.client,
        wheel,
        token,
        name="attested",
        version="1.0",
        attestations=attestation(wheel.name, "0" * 64),
    )
    assert_problem(bad, 400, "invalid-attestations")
    good = upload(
        index.client,
        wheel,
        token,
        name="attested",
        version="1.0",
        attestations=attestation(wheel.name, sha),
    )
    assert good.status_code == 200, good.text
