"""Upload 2.0 operation latency: create session, create file session, send bytes, complete,
publish — p50 and p95 over many small releases, on SQLite and on PostgreSQL.

    python benchmarks/upload2_ops.py [--releases 100] [--postgres-url URL]

Without ``--postgres-url`` the PostgreSQL column uses the cluster ``scripts/postgres.sh``
starts (a fresh database is created for the run and dropped after).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from common import BIN, Table, free_port, start  # noqa: E402
from tests.dists import make_wheel  # noqa: E402

V2 = "application/vnd.pypi.upload.v2+json"
META = {"meta": {"api-version": "2.0"}}
OPS = ["create session", "create file session", "send bytes", "complete", "publish"]


def run(database_url: str | None, releases: int, workdir: Path) -> dict[str, list[float]]:
    data = workdir / f"data-{secrets.token_hex(3)}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        str(BIN / "pallet"),
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--no-access-log",
    ]
    if database_url:
        cmd += ["--database-url", database_url]
    proc = start("pallet", cmd, workdir, f"{base}/_/health")
    timings: dict[str, list[float]] = {op: [] for op in OPS}
    try:
        token_cmd = [str(BIN / "pallet"), "token", "create", "--data-dir", str(data)]
        if database_url:
            token_cmd += ["--database-url", database_url]
        token = (
            subprocess.run(token_cmd, capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        headers = {"Authorization": f"Bearer {token}", "Content-Type": V2, "Accept": V2}
        wheels = workdir / "wheels"
        wheels.mkdir(exist_ok=True)
        with httpx.Client(headers=headers, timeout=60) as c:

            def timed(op: str, method: str, url: str, **kw: object) -> httpx.Response:
                t = time.perf_counter()
                r = c.request(method, url, **kw)
                timings[op].append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
                return r

            for i in range(releases):
                name = f"ops-{secrets.token_hex(4)}"
                wheel = make_wheel(wheels, name, "1.0")
                data_bytes = wheel.read_bytes()
                s = timed(
                    "create session",
                    "POST",
                    f"{base}/upload/2.0/",
                    content=json.dumps({**META, "name": name, "version": "1.0"}),
                ).json()
                fs = timed(
                    "create file session",
                    "POST",
                    s["links"]["upload"],
                    content=json.dumps(
                        {
                            **META,
                            "filename": wheel.name,
                            "size": len(data_bytes),
                            "hashes": {"sha256": hashlib.sha256(data_bytes).hexdigest()},
                            "mechanism": "http-post-bytes",
                        }
                    ),
                ).json()
                timed(
                    "send bytes",
                    "POST",
                    fs["mechanism"]["file_url"],
                    content=data_bytes,
                    headers={"Content-Type": "application/octet-stream"},
                )
                timed("complete", "POST", fs["links"]["complete"], content=json.dumps(META))
                timed("publish", "POST", s["links"]["publish"], content=json.dumps(META))
                if i == 0:  # the first round pays for connections and caches
                    for op in OPS:
                        timings[op].clear()
    finally:
        proc.stop()
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--releases", type=int, default=100)
    parser.add_argument("--postgres-url", help="server URL of a PostgreSQL (database 'postgres')")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="pallet-ops-bench-"))
    results: dict[str, dict[str, list[float]]] = {}
    try:
        results["sqlite"] = run(None, args.releases, workdir)
        if not args.sqlite_only:
            base = (
                args.postgres_url
                or subprocess.run(
                    [
                        "bash",
                        str(Path(__file__).parent.parent / "scripts" / "postgres.sh"),
                        "start",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
            )
            import psycopg

            name = f"pallet_bench_{secrets.token_hex(4)}"
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                results["postgresql"] = run(
                    base.rsplit("/", 1)[0] + "/" + name, args.releases, workdir
                )
            finally:
                with psycopg.connect(base, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    columns = [f"{db} p50 / p95 (ms)" for db in results]
    table = Table(f"Upload 2.0 operations, {args.releases} releases (small wheel each)", columns)
    for op in OPS:
        values = {}
        for db, timings in results.items():
            xs = sorted(timings[op])
            p95 = xs[min(len(xs) - 1, int(len(xs) * 0.95))]
            values[f"{db} p50 / p95 (ms)"] = f"{statistics.median(xs):.1f} / {p95:.1f}"
        table.add(op, values)
    table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
