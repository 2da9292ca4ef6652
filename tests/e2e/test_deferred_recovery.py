"""Deferred work outlives the replica that accepted it.

A server answers ``202 processing`` for a publish (``--deferred-publish``) or a large file's
``complete`` (``--deferred-complete-size``), then is SIGKILLed while the work is held at the test
gate. A second server on the same database and store takes the work over once the dead one's
lease lapses, which the test forces (``/_/test/expire`` with ``"leases": true``) instead of
waiting out the lease: the release is published, completely, with nothing left ``processing``.
Before leases, such a session stayed ``processing`` for good and its filenames reserved.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dists import make_wheel
from tests.e2e.support import PostgresDatabases, listed, start_server

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

V2 = "application/vnd.pypi.upload.v2+json"
DEADLINE = 60.0  # seconds for the survivor to finish the work (it looks every 5 s)


def _post(http: httpx.Client, url: str, token: str, body: dict | None = None) -> httpx.Response:
    return http.post(
        url,
        json={"meta": {"api-version": "2.0"}, **(body or {})},
        headers={"Content-Type": V2, "Accept": V2},
        auth=("__token__", token),
    )


def _release_with_one_file(http: httpx.Client, base: str, token: str, wheel: Path) -> dict:
    r = _post(http, f"{base}/upload/2.0/", token, {"name": "phoenix", "version": "1.0"})
    assert r.status_code == 201, r.text
    session = r.json()
    data = wheel.read_bytes()
    body = {
        "filename": wheel.name,
        "size": len(data),
        "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
        "mechanism": "http-post-bytes",
    }
    fs = _post(http, session["links"]["upload"], token, body)
    assert fs.status_code == 202, fs.text
    return {"session": session, "file": fs.json(), "data": data}


def _kill(server) -> None:  # noqa: ANN001
    server.process.send_signal(signal.SIGKILL)  # the master; its workers die with the pipe
    server.process.wait(timeout=30)
    # uvicorn's workers notice their parent died; make sure, by the group, that none serves on
    server.stop()


def _wait_status(http: httpx.Client, url: str, token: str, want: str) -> dict:
    deadline = time.monotonic() + DEADLINE
    while True:
        body = http.get(url, headers={"Accept": V2}, auth=("__token__", token)).json()
        if body["status"] == want or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


@pytest.fixture
def database_url() -> Iterator[str]:
    base = os.environ.get("PALLET_TEST_POSTGRES_URL")
    if not base:
        pytest.fail("PALLET_TEST_POSTGRES_URL is not set (make test sets it)")
    databases = PostgresDatabases(base)
    yield databases.create()
    databases.drop_all()


@pytest.mark.parametrize("step", ["publish", "complete"])
def test_work_of_a_killed_replica_is_finished_by_another(
    step: str, database_url: str, tmp_path: Path
) -> None:
    held = ("--processing-delay", "600", "--test-hooks", "--gc-interval", "0")
    deferral = (
        ("--deferred-publish",) if step == "publish" else ("--deferred-complete-size", "1")
    )
    first = start_server(tmp_path / "a", database_url=database_url, extra_args=held + deferral)
    started = [first]
    try:
        _kill_then_recover(step, first, database_url, tmp_path, started)
    finally:
        for server in started:  # by PID, whatever failed
            server.stop()


def _kill_then_recover(  # noqa: PLR0913
    step: str, first, database_url: str, tmp_path: Path, started: list  # noqa: ANN001
) -> None:
    wheel = make_wheel(tmp_path / "w", "phoenix", "1.0")
    with httpx.Client(timeout=30) as http:
        made = _release_with_one_file(http, first.url, first.token, wheel)
        session, fs = made["session"], made["file"]
        up = http.post(
            fs["mechanism"]["file_url"],
            content=made["data"],
            headers={"Content-Type": "application/octet-stream"},
            auth=("__token__", first.token),
        )
        assert up.status_code in (200, 201, 204), up.text
        if step == "complete":
            done = _post(http, fs["links"]["complete"], first.token)
            assert done.status_code == 202 and done.json()["status"] == "processing", done.text
        else:
            done = _post(http, fs["links"]["complete"], first.token)
            assert done.status_code == 201, done.text
            published = _post(http, session["links"]["publish"], first.token)
            assert published.status_code == 202, published.text
            assert published.json()["status"] == "processing"
        _kill(first)

        # The survivor: same database, same store (the first one's data dir holds the blobs).
        store = f"file://{first.data_dir / 'blobs'}"
        survivor = start_server(
            tmp_path / "b",
            database_url=database_url,
            extra_args=("--test-hooks", "--gc-interval", "0", "--storage-url", store),
        )
        started.append(survivor)
        base = survivor.url
        session_url = base + httpx.URL(session["links"]["session"]).path
        sid = session_url.rstrip("/").rsplit("/", 1)[-1]
        lapse = http.post(
            f"{base}/_/test/expire",
            json={"session": sid, "leases": True},
            auth=("__token__", survivor.token),
        )
        assert lapse.status_code == 204, lapse.text
        if step == "complete":
            file_url = base + httpx.URL(fs["links"]["file-upload-session"]).path
            body = _wait_status(http, file_url, survivor.token, "completed")
            assert body["status"] == "completed", (body, survivor.log())
            publish_url = base + httpx.URL(session["links"]["publish"]).path
            published = _post(http, publish_url, survivor.token)
            assert published.status_code == 201, published.text
        body = _wait_status(http, session_url, survivor.token, "published")
        assert body["status"] == "published", (body, survivor.log())
    assert listed(survivor, "phoenix") == {wheel.name: hashlib.sha256(made["data"]).hexdigest()}
