"""Read-path benchmark: Pallet's simple index side by side with pypiserver and devpi-server.

Pallet is seeded straight into its database (N projects x 10 files, at two scales, to show the
figures stay flat); the peers are seeded the way their users would (a folder of files for
pypiserver, HTTP uploads for devpi-server), at a smaller scale by default because that is slow.
Load comes from wrk on the same machine, spread over 100 projects.

    python benchmarks/read_path.py [--quick] [--only pallet] [--peer-projects 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import insert
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))
from common import BIN, Table, free_port, start, start_devpi, wrk  # noqa: E402

from pallet.db.engine import make_engine, upgrade  # noqa: E402
from pallet.db.models import File, JournalEntry, Project, Release  # noqa: E402

JSON = "application/vnd.pypi.simple.v1+json"
FILES_PER_PROJECT = 10
SPREAD = 100  # distinct project pages the load cycles through


def seed_pallet(database_url: str, projects: int) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    now = datetime.now(UTC)
    with Session(engine) as s, s.begin():
        s.execute(
            insert(Project),
            [
                {
                    "id": i + 1,
                    "name": f"Proj{i}",
                    "normalized_name": f"proj{i}",
                    "created": now,
                    "last_serial": i + 1,
                }
                for i in range(projects)
            ],
        )
        s.execute(
            insert(JournalEntry),
            [
                {"id": i + 1, "project_id": i + 1, "action": "seed", "submitted": now}
                for i in range(projects)
            ],
        )
        s.execute(
            insert(Release),
            [
                {
                    "id": i * FILES_PER_PROJECT + v + 1,
                    "project_id": i + 1,
                    "version": f"1.{v}",
                    "canonical_version": f"1.{v}",
                    "created": now,
                    "yanked": False,
                }
                for i in range(projects)
                for v in range(FILES_PER_PROJECT)
            ],
        )
        rows = []
        for i in range(projects):
            for v in range(FILES_PER_PROJECT):
                digest = hashlib.sha256(f"{i}-{v}".encode()).hexdigest()
                rows.append(
                    {
                        "release_id": i * FILES_PER_PROJECT + v + 1,
                        "filename": f"proj{i}-1.{v}-py3-none-any.whl",
                        "size": 1000,
                        "sha256": digest,
                        "blake2_256": digest,
                        "md5": None,
                        "upload_time": now,
                        "packagetype": "bdist_wheel",
                        "python_version": "py3",
                        "requires_python": ">=3.9",
                        "yanked": False,
                        "published": True,
                        "uploaded_via": "bench",
                    }
                )
            if len(rows) > 50_000:
                s.execute(insert(File), rows)
                rows = []
        if rows:
            s.execute(insert(File), rows)
    engine.dispose()


def spread_script(workdir: Path, template: str, accept: str) -> Path:
    """A wrk script cycling over SPREAD project pages (template has one %d)."""
    path = workdir / f"spread-{abs(hash((template, accept)))}.lua"
    path.write_text(
        "local i = 0\n"
        "request = function()\n"
        f"  i = (i + 37) % {SPREAD}\n"
        f'  return wrk.format("GET", string.format("{template}", i), '
        f'{{["Accept"]="{accept}"}})\n'
        "end\n"
    )
    return path


def measure(
    base: str, page: str, listing: str, workdir: Path, seconds: int, json_ok: bool
) -> dict[str, str]:
    out: dict[str, str] = {}
    html = spread_script(workdir, page, "text/html")
    r = wrk(base, connections=32, seconds=seconds, script=html)
    out["page HTML, 32 conn (req/s)"] = f"{r.rps:,.0f}" + (f" ({r.errors} err)" if r.errors else "")
    if json_ok:
        js = spread_script(workdir, page, JSON)
        r = wrk(base, connections=32, seconds=seconds, script=js)
        out["page JSON, 32 conn (req/s)"] = f"{r.rps:,.0f}" + (
            f" ({r.errors} err)" if r.errors else ""
        )
        one = wrk(base, connections=1, seconds=seconds, script=js)
    else:
        one = wrk(base, connections=1, seconds=seconds, script=html)
    out["page, 1 conn p50 (ms)"] = f"{one.p50_ms:.2f}"
    out["page, 1 conn p99 (ms)"] = f"{one.p99_ms:.2f}"
    r = wrk(base + listing, connections=32, seconds=seconds)
    out["/simple/, 32 conn (req/s)"] = f"{r.rps:,.0f}" + (f" ({r.errors} err)" if r.errors else "")
    return out


def run_pallet(workdir: Path, projects: int, seconds: int, database_url: str | None) -> dict:
    data = workdir / f"pallet-{projects}"
    data.mkdir()
    url = database_url or f"sqlite:///{data / 'pallet.db'}"
    seed_pallet(url, projects)
    port = free_port()
    proc = start(
        "pallet",
        [
            str(BIN / "pallet"),
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--database-url",
            url,
            "--workers",
            "2",
        ],
        workdir,
        f"http://127.0.0.1:{port}/_/health",
    )
    try:
        # warm each worker's page cache the way steady traffic would
        wrk(
            f"http://127.0.0.1:{port}",
            connections=8,
            seconds=2,
            script=spread_script(workdir, "/simple/proj%d/", "text/html"),
        )
        wrk(
            f"http://127.0.0.1:{port}",
            connections=8,
            seconds=2,
            script=spread_script(workdir, "/simple/proj%d/", JSON),
        )
        return measure(
            f"http://127.0.0.1:{port}",
            "/simple/proj%d/",
            "/simple/",
            workdir,
            seconds,
            json_ok=True,
        )
    finally:
        proc.stop()


def run_pypiserver(workdir: Path, projects: int, seconds: int) -> dict:
    packages = workdir / "pypiserver-packages"
    packages.mkdir()
    for i in range(projects):
        for v in range(FILES_PER_PROJECT):
            (packages / f"proj{i}-1.{v}.tar.gz").write_bytes(f"{i}-{v}".encode())
    port = free_port()
    proc = start(
        "pypiserver",
        [
            str(BIN / "pypi-server"),
            "run",
            "-p",
            str(port),
            "-i",
            "127.0.0.1",
            "-a",
            ".",
            "-P",
            ".",
            "--server",
            "gunicorn",
            "--backend",
            "cached-dir",
            "--hash-algo",
            "sha256",
            str(packages),
        ],
        workdir,
        f"http://127.0.0.1:{port}/simple/",
        timeout=300,
    )
    try:
        return measure(
            f"http://127.0.0.1:{port}",
            "/simple/proj%d/",
            "/simple/",
            workdir,
            seconds,
            json_ok=False,
        )
    finally:
        proc.stop()


def run_devpi(workdir: Path, projects: int, seconds: int) -> dict:
    proc, base = start_devpi(workdir)
    try:
        with httpx.Client(base_url=base, timeout=60, auth=("bench", "bench")) as c:

            def upload(i: int) -> None:
                for v in range(FILES_PER_PROJECT):
                    c.post(
                        "/bench/dev/",
                        data={":action": "file_upload", "name": f"proj{i}", "version": f"1.{v}"},
                        files={"content": (f"proj{i}-1.{v}.tar.gz", f"{i}-{v}".encode())},
                    ).raise_for_status()

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(upload, range(projects)))
        return measure(
            base,
            "/bench/dev/+simple/proj%d/",
            "/bench/dev/+simple/",
            workdir,
            seconds,
            json_ok=True,
        )
    finally:
        proc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short runs, 1,000 projects only")
    parser.add_argument("--only", choices=["pallet", "pypiserver", "devpi"])
    parser.add_argument(
        "--peer-projects",
        type=int,
        default=1000,
        help="projects seeded into pypiserver (devpi gets a fifth)",
    )
    parser.add_argument("--database-url", help="run Pallet on this (empty) database")
    args = parser.parse_args()
    seconds = 4 if args.quick else 10
    scales = [1000] if args.quick else [1000, 10_000]
    workdir = Path(tempfile.mkdtemp(prefix="pallet-bench-"))
    columns, results = [], {}
    try:
        if args.only in (None, "pallet"):
            for n in scales:
                col = f"pallet ({n:,} projects)"
                columns.append(col)
                results[col] = run_pallet(workdir, n, seconds, args.database_url)
        peers = [
            ("pypiserver", run_pypiserver, args.peer_projects),
            ("devpi", run_devpi, max(args.peer_projects // 5, 100)),
        ]
        for name, runner, n in peers:
            if args.only not in (None, name):
                continue
            col = f"{name} ({n:,} projects)"
            columns.append(col)
            try:
                results[col] = runner(workdir, n, seconds)
            except Exception as exc:  # noqa: BLE001 - report and carry on with the others
                print(f"{name} failed: {exc}", file=sys.stderr)
                results[col] = {}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    table = Table("Read path (2 uvicorn workers for Pallet; wrk on the same 2 cores)", columns)
    metrics = [
        "page JSON, 32 conn (req/s)",
        "page HTML, 32 conn (req/s)",
        "page, 1 conn p50 (ms)",
        "page, 1 conn p99 (ms)",
        "/simple/, 32 conn (req/s)",
    ]
    for metric in metrics:
        table.add(metric, {c: results[c].get(metric, "-") for c in columns})
    table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
