"""A full disk, for real: the index's data folder on a small tmpfs. Every upload path answers a
507 problem and keeps nothing, ``pallet publish`` calls it fatal (no ``--resume`` advice),
``/_/ready`` reports the storage, and reads go on being served."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dists import make_large_wheel, make_wheel
from tests.e2e.support import Server, client_env, http_get, pallet_command, run, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
DISK_MB = 48


@pytest.fixture(scope="module")
def full_disk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("full-disk")
    data = base / "data"
    data.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert mounted.returncode == 0, f"this test mounts a tmpfs (run as root): {mounted.stderr}"
    server = None
    try:
        server = start_server(base, extra_args=("--min-free-space", "4M"))
        yield server
    finally:
        if server is not None:
            server.stop()
        subprocess.run(["umount", "-l", str(data)], check=False)


def leftovers(server: Server) -> list[str]:
    """Every file in the data folder but the database, the key and published blobs."""
    keep = {"pallet.db", "pallet.db-wal", "pallet.db-shm", "secret-key"}
    published = set()
    for path in server.data_dir.rglob("*"):
        if path.is_file() and path.name not in keep and "/sha256/" not in str(path):
            published.add(str(path.relative_to(server.data_dir)))
    return sorted(published)


def blob_count(server: Server) -> int:
    root = server.data_dir / "blobs" / "sha256"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


@pytest.mark.parametrize(
    "args",
    [
        ("--protocol", "legacy"),
        ("--mechanism", "http-post-bytes"),
        ("--mechanism", "vnd-pallet-presigned-put"),
        ("--mechanism", "vnd-pallet-s3multipart-presigned", "--multipart-threshold", "8M"),
    ],
    ids=["legacy", "http-post-bytes", "presigned-put", "multipart"],
)
def test_a_full_disk_is_507_and_keeps_nothing(
    full_disk_server: Server, tmp_path: Path, args: tuple[str, ...]
) -> None:
    server = full_disk_server
    small = make_wheel(tmp_path, "still-readable", "1.0")
    publish = [*pallet_command(), "publish", "--url", server.url, "--token", server.token]
    env = client_env(tmp_path)
    run([*publish, small], env=env)  # present before the disk fills (idempotent re-runs)
    blobs = blob_count(server)
    big = make_large_wheel(tmp_path, "too-big", "1.0", (DISK_MB + 8) * 2**20)
    result = run([*publish, "--json", *args, big], env=env, timeout=300)
    assert result.returncode != 0
    assert "storage is full" in result.stdout, result.stdout
    assert "--resume" not in result.stdout, result.stdout
    assert leftovers(server) == []
    assert blob_count(server) == blobs
    assert "Traceback" not in server.log(None)
    page = http_get(f"{server.simple_url}still-readable/")
    assert page.status == 200


def test_ready_reports_the_storage_and_reads_go_on(full_disk_server: Server, tmp_path: Path) -> None:
    server = full_disk_server
    assert http_get(f"{server.url}/_/ready").status == 200
    filler = server.data_dir / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(bytes(1 << 20))
                out.flush()
        except OSError:
            pass
    try:
        ready = http_get(f"{server.url}/_/ready")
        assert ready.status == 503
        checks = json.loads(ready.body)["checks"]
        assert checks["storage"].startswith("error") and checks["spool"].startswith("error")
        assert http_get(f"{server.url}/_/health").status == 200  # alive, just not ready
        assert http_get(f"{server.simple_url}").status == 200
    finally:
        os.unlink(filler)
    assert http_get(f"{server.url}/_/ready").status == 200
