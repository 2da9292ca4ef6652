"""The reserve / finalize protocol's hostile paths (the happy path runs with real uv in e2e)."""

from __future__ import annotations

from tests.api.test_legacy_upload import assert_nothing_stored, assert_problem
from tests.api.uploads import form_for
from tests.dists import make_wheel


def fields(path, name="direct", version="1.0", **overrides):  # noqa: ANN001, ANN003, ANN201
    f = form_for(path, name, version, **overrides)
    f["filename"] = overrides.get("filename") or path.name
    return f


def post(index, action: str, data: dict, token: str | None):  # noqa: ANN001, ANN201
    return index.client.post(
        f"/direct/{action}", data=data, auth=("__token__", token) if token else None
    )


def test_finalize_without_put_publishes_nothing(index, tmp_path):
    wheel = make_wheel(tmp_path, "direct", "1.0")
    token = index.token()
    r = post(index, "reserve", fields(wheel), token)
    assert r.status_code == 201 and r.json()["upload_url"]
    assert_problem(post(index, "finalize", fields(wheel), token), 409, "no-bytes")
    assert_nothing_stored(index, "direct")


def test_wrong_bytes_caught_by_signed_url_and_finalize(index, tmp_path):
    wheel = make_wheel(tmp_path, "direct", "1.0")
    token = index.token()
    r = post(index, "reserve", fields(wheel), token).json()
    bad = b"x" + wheel.read_bytes()[1:]
    put = index.client.put(r["upload_url"], content=bad, headers=r["upload_headers"])
    assert_problem(put, 400, "bad-digest")
    forged = index.client.put(
        r["upload_url"].replace("Signature=", "Signature=0"),
        content=wheel.read_bytes(),
        headers=r["upload_headers"],
    )
    assert forged.status_code == 403
    assert_problem(post(index, "finalize", fields(wheel), token), 409, "no-bytes")
    ok = index.client.put(r["upload_url"], content=wheel.read_bytes(), headers=r["upload_headers"])
    assert ok.status_code == 200
    assert post(index, "finalize", fields(wheel), token).status_code == 200
    assert post(index, "reserve", fields(wheel), token).status_code == 200  # uv: already there


def test_finalize_rejects_metadata_mismatch_and_cleans_up(index, tmp_path):
    wheel = make_wheel(tmp_path, "direct", "1.0")
    token = index.token()
    r = post(index, "reserve", fields(wheel, version="1.0"), token).json()
    index.client.put(r["upload_url"], content=wheel.read_bytes(), headers=r["upload_headers"])
    bad = post(index, "finalize", fields(wheel, version="2.0"), token)
    assert bad.status_code == 400
    assert_nothing_stored(index, "direct")


def test_reserve_validates_input(index, tmp_path):
    wheel = make_wheel(tmp_path, "direct", "1.0")
    token = index.token()
    assert_problem(post(index, "reserve", fields(wheel), None), 401, "unauthorized")
    other = index.token(projects=["elsewhere"])
    assert_problem(post(index, "reserve", fields(wheel), other), 403, "forbidden")
    assert_problem(
        post(index, "reserve", fields(wheel, filename="../x-1.0.tar.gz"), token),
        400,
        "invalid-filename",
    )
    assert_problem(
        post(index, "reserve", fields(wheel, sha256_digest=None), token), 400, "missing-digest"
    )
    files = {"content": ("x", b"data")}
    r = index.client.post(
        "/direct/reserve", data=fields(wheel), files=files, auth=("__token__", token)
    )
    assert r.status_code == 400


def test_metrics_count_uploads_per_path(index, tmp_path):
    from tests.api.uploads import upload

    token = index.token()
    legacy = make_wheel(tmp_path, "direct", "1.0")
    assert upload(index.client, legacy, token, name="direct", version="1.0").status_code == 200
    (tmp_path / "d").mkdir()
    wheel = make_wheel(tmp_path / "d", "direct", "2.0")
    r = post(index, "reserve", fields(wheel, version="2.0"), token).json()
    index.client.put(r["upload_url"], content=wheel.read_bytes(), headers=r["upload_headers"])
    assert post(index, "finalize", fields(wheel, version="2.0"), token).status_code == 200
    text = index.client.get("/_/metrics").text
    assert 'pallet_published_files_total{via="legacy"} 1' in text
    assert 'pallet_published_files_total{via="direct"} 1' in text
    assert f'pallet_published_bytes_total{{via="direct"}} {wheel.stat().st_size}' in text


def test_gc_removes_abandoned_direct_objects(index, tmp_path):
    import os
    import time

    from pallet.gc import sweep

    wheel = make_wheel(tmp_path, "direct", "1.0")
    token = index.token()
    r = post(index, "reserve", fields(wheel), token).json()
    index.client.put(r["upload_url"], content=wheel.read_bytes(), headers=r["upload_headers"])
    staged = [p for p in (index.services.settings.data_dir / "blobs" / "direct").iterdir()]
    assert len(staged) == 1
    assert sweep(index.services)["abandoned_objects"] == 0  # young: a finalize may still come
    old = time.time() - 2 * 86400
    os.utime(staged[0], (old, old))
    assert sweep(index.services)["abandoned_objects"] == 1
    assert not staged[0].exists()
