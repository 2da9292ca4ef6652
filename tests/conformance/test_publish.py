"""Publish, name reservation, atomic visibility, stage previews with real pip and uv."""

from __future__ import annotations

import concurrent.futures
import hashlib
import subprocess

import httpx

from tests.conformance.conftest import Release, Target, legacy_upload, pallet_only, unique_name
from tests.conformance.test_sessions import assert_problem
from tests.e2e.support import client_env, make_venv, tool

JSON = "application/vnd.pypi.simple.v1+json"


def index_files(target: Target, name: str) -> list[str] | None:
    r = httpx.get(f"{target.index_url}{name}/", headers={"Accept": JSON})
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return sorted(f["filename"] for f in r.json()["files"])


def test_must_first_release_name_is_reserved_and_invisible(release: Release, target: Target):
    release.open()
    release.upload(release.wheel())
    assert index_files(target, release.name) is None
    listing = httpx.get(target.index_url, headers={"Accept": JSON}).json()
    assert release.name not in [p["name"] for p in listing["projects"]]


def test_must_cancel_releases_first_release_name(release: Release, target: Target):
    pallet_only(target)
    release.open()
    assert release.client.delete(release.session["links"]["session"]).status_code == 204
    other = Release(target, target.client(), release.name, "2.0", release.tmp)
    assert other.open().status_code == 201


def test_must_publish_requires_every_file_completed(release: Release):
    release.open()
    wheel, sdist = release.wheel(), release.sdist()
    release.upload(wheel)
    release.start_file(sdist)
    body = assert_problem(release.publish(), 409)
    assert [e["source"] for e in body["errors"]] == [f"files/{sdist.name}"]
    assert release.status()["status"] == "open"  # synchronous failure: state unchanged


def test_publish_makes_all_files_visible_together(release: Release, target: Target):
    release.open()
    wheel, sdist = release.wheel(), release.sdist()
    release.upload(wheel)
    release.upload(sdist)
    r = release.publish()
    assert r.status_code in (201, 202)
    assert r.headers["location"] == release.session["links"]["session"]
    assert release.wait_session()["status"] == "published"
    assert index_files(target, release.name) == sorted([wheel.name, sdist.name])
    page = httpx.get(f"{target.index_url}{release.name}/", headers={"Accept": JSON}).json()
    by_name = {f["filename"]: f for f in page["files"]}
    assert by_name[wheel.name]["hashes"]["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert by_name[wheel.name]["core-metadata"]  # PEP 658 for files from Upload 2.0 too
    # published is terminal; the stage dies with the session
    assert_problem(release.publish(), 409)
    assert httpx.get(release.session["links"]["stage"]).status_code == 404


def test_must_published_filename_is_409_at_file_creation(release: Release, target: Target):
    release.open()
    wheel = release.wheel()
    release.upload(wheel)
    assert release.publish().status_code in (201, 202)
    release.wait_session()
    again = Release(target, release.client, release.name, "1.0", release.tmp)
    assert again.open().status_code == 201
    assert_problem(again.start_file(wheel), 409)


def test_publish_into_existing_release_adds_wheels(release: Release, target: Target):
    release.open()
    sdist = release.sdist()
    release.upload(sdist)
    release.publish()
    release.wait_session()
    more = Release(target, release.client, release.name, "1.0", release.tmp)
    assert more.open().status_code == 201
    wheel = more.wheel()
    more.upload(wheel)
    assert more.publish().status_code in (201, 202)
    assert more.wait_session()["status"] == "published"
    assert index_files(target, release.name) == sorted([wheel.name, sdist.name])


def test_empty_session_publish_registers_the_name(release: Release, target: Target):
    release.open()
    assert release.publish().status_code in (201, 202)
    assert release.wait_session()["status"] == "published"
    assert index_files(target, release.name) == []


def test_must_open_session_reserves_nothing_then_publish_conflict_is_409(
    release: Release, target: Target
):
    """A legacy upload of the same filename while the session is open wins; the publish then
    fails synchronously with 409 and leaves the session editable."""
    pallet_only(target)
    seed = Release(target, release.client, release.name, "0.1", release.tmp)
    seed.open()
    seed.publish()
    seed.wait_session()  # project exists, so legacy uploads are allowed
    release.open()
    wheel = release.wheel()
    release.upload(wheel)
    legacy = legacy_upload(target, release.name, "1.0", wheel)
    assert legacy.status_code == 200, legacy.text
    body = assert_problem(release.publish(), 409)
    assert f"files/{wheel.name}" in [e["source"] for e in body["errors"]]
    assert release.status()["status"] == "open"


def test_concurrent_legacy_upload_and_publish_exactly_one_wins(release: Release, target: Target):
    pallet_only(target)
    seed = Release(target, release.client, release.name, "0.1", release.tmp)
    seed.open()
    seed.publish()
    seed.wait_session()
    outcomes = []
    for version in ("1.0", "1.1", "1.2"):
        rel = Release(target, target.client(), release.name, version, release.tmp)
        rel.open()
        wheel = rel.wheel()
        rel.upload(wheel)

        def legacy(wheel=wheel, version=version) -> int:  # noqa: ANN001
            return legacy_upload(target, release.name, version, wheel).status_code

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            a = pool.submit(rel.publish)
            b = pool.submit(legacy)
            publish_status, legacy_status = a.result().status_code, b.result()
        if publish_status == 202:
            publish_status = 201 if rel.wait_session()["status"] == "published" else 409
        outcomes.append((publish_status, legacy_status))
        # the file is listed exactly once, whoever won
        assert index_files(target, release.name).count(wheel.name) == 1
    for publish_status, legacy_status in outcomes:
        # exactly one of them made the file: the loser saw a conflict, or the identical
        # bytes (legacy after publish: 200 "already there"; publish after legacy: 409)
        assert publish_status in (201, 409)
        assert legacy_status in (200, 409)
        assert not (publish_status == 409 and legacy_status == 409)


def _stage_install(target: Target, release: Release, tmp, installer: str) -> None:  # noqa: ANN001
    env = client_env(tmp)
    module = release.name.replace("-", "_")
    stage = release.session["links"]["stage"]
    if installer == "pip":
        py = make_venv(tmp / "venv-pip", env, pip=True)
        cmd = [
            str(py),
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--index-url",
            target.index_url,
            "--extra-index-url",
            stage,
            f"{release.name}==1.0",
        ]
    else:
        py = make_venv(tmp / "venv-uv", env)
        cmd = [
            tool("uv"),
            "pip",
            "install",
            "--python",
            str(py),
            "--index-url",
            stage,
            f"{release.name}==1.0",
        ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    check = subprocess.run(
        [str(py), "-c", f"import {module}; print({module}.__version__)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.stdout.strip() == "1.0", check.stderr


def test_stage_preview_installs_with_pip_and_uv_then_publish(
    release: Release, target: Target, tmp_path
):
    release.open()
    wheel, sdist = release.wheel(), release.sdist()
    release.upload(wheel)
    release.upload(sdist)
    assert index_files(target, release.name) is None  # not public yet
    stage_page = httpx.get(
        release.session["links"]["stage"] + f"{release.name}/", headers={"Accept": JSON}
    )
    assert stage_page.status_code == 200
    assert sorted(f["filename"] for f in stage_page.json()["files"]) == sorted(
        [wheel.name, sdist.name]
    )
    _stage_install(target, release, tmp_path, "pip")
    _stage_install(target, release, tmp_path, "uv")
    assert release.publish().status_code in (201, 202)
    assert release.wait_session()["status"] == "published"
    env = client_env(tmp_path)
    py = make_venv(tmp_path / "venv-main", env, pip=True)
    result = subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--index-url",
            target.index_url,
            f"{release.name}==1.0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_stage_is_a_capability_not_needing_credentials(release: Release):
    release.open()
    release.upload(release.wheel())
    assert httpx.get(release.session["links"]["stage"]).status_code == 200
    wrong = release.session["links"]["stage"].replace(release.session["session-token"], "x" * 32)
    assert httpx.get(wrong).status_code == 404


def test_session_token_is_unguessable(target: Target, release: Release):
    tokens = set()
    for _ in range(3):
        r = Release(target, release.client, unique_name(), "1.0", release.tmp)
        r.open()
        tokens.add(r.session["session-token"])
        assert len(r.session["session-token"]) >= 22
    assert len(tokens) == 3
