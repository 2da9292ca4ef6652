"""Read-path benchmark: Pallet's simple index side by side with pypiserver and devpi-server.

Pallet is seeded straight into its database (N projects x 10 files, at 1,000 and 10,000 projects
so one can see whether the figures stay flat as the index grows). The peers get 1,000 projects
each, filled the way their admins would: a folder of files for pypiserver (once with its default
sha256 links, once without hashes), devpi-import of a cloned export for devpi-server (uploading
10,000 files over HTTP would take half an hour). Load comes from wrk on the same machine, spread
over 100 project pages; each server is checked to answer real pages before it is measured.

    python benchmarks/read_path.py [--quick] [--only pallet|pypiserver|devpi]
                                   [--peer-projects 1000] [--devpi-seed import|http]
                                   [--database-url URL]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))
from common import (  # noqa: E402
    BIN,
    Table,
    WrkResult,
    ensure_wrk,
    exit_cleanly_on_sigterm,
    log,
    serve_devpi,
    start_devpi,
    start_pallet,
    start_pypiserver,
    wrk,
)

from pallet.db.engine import make_engine, upgrade  # noqa: E402
from pallet.db.models import File, JournalEntry, Project, Release  # noqa: E402

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "text/html"
FILES_PER_PROJECT = 10
SPREAD = 100  # distinct project pages the load cycles through
WARMUP_SECONDS = 2

METRICS = [
    "project page JSON, 32 conn (req/s)",
    "project page HTML, 32 conn (req/s)",
    "project page JSON, 1 conn p50 (ms)",
    "project page JSON, 1 conn p99 (ms)",
    "/simple/ list, 32 conn (req/s)",
    "/simple/ list size (kB)",
    "/simple/ list gzip, 32 conn (req/s)",
    "/simple/ list gzip, on the wire (kB)",
]
GZIP = {"Accept-Encoding": "gzip"}  # what pip and uv send


def seed_pallet(database_url: str, first: int, last: int) -> None:
    """Insert projects ``first..last-1`` (10 releases of one wheel each) in bulk, as an upload
    would leave them: a journal entry per project whose id is the project's last_serial."""
    engine = make_engine(database_url)
    upgrade(engine)
    now = datetime.now(UTC)
    ids = range(first, last)
    with Session(engine) as s, s.begin():
        if first == 0 and s.scalar(select(func.count()).select_from(Project)):
            raise SystemExit(f"{database_url} already holds projects: give an empty database")
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
                for i in ids
            ],
        )
        s.execute(
            insert(JournalEntry),
            [{"id": i + 1, "project_id": i + 1, "action": "seed", "submitted": now} for i in ids],
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
                    "requires_python": ">=3.9",
                    "info": None,
                }
                for i in ids
                for v in range(FILES_PER_PROJECT)
            ],
        )
        rows = []
        for i in ids:
            for v in range(FILES_PER_PROJECT):
                name = f"proj{i}-1.{v}-py3-none-any.whl"
                rows.append(
                    {
                        "release_id": i * FILES_PER_PROJECT + v + 1,
                        "filename": name,
                        "size": 1000 + v,
                        "sha256": hashlib.sha256(name.encode()).hexdigest(),
                        "blake2_256": hashlib.blake2b(name.encode(), digest_size=32).hexdigest(),
                        "md5": None,
                        "upload_time": now,
                        "packagetype": "bdist_wheel",
                        "python_version": "py3",
                        "requires_python": ">=3.9",
                        "yanked": False,
                        "metadata_sha256": None,
                        "attestations": None,
                        "published": True,
                        "uploaded_via": "bench",
                    }
                )
            if len(rows) >= 50_000:
                s.execute(insert(File), rows)
                rows = []
        if rows:
            s.execute(insert(File), rows)
    engine.dispose()


def unseed_pallet(database_url: str, last: int) -> None:
    """Take our rows out of a database the caller lent us (it was empty when we started)."""
    engine = make_engine(database_url)
    with Session(engine) as s, s.begin():
        s.execute(delete(File).where(File.uploaded_via == "bench"))
        s.execute(delete(Release).where(Release.project_id <= last))
        s.execute(
            delete(JournalEntry).where(JournalEntry.id <= last, JournalEntry.action == "seed")
        )
        s.execute(delete(Project).where(Project.id <= last))
    engine.dispose()


def spread_script(workdir: Path, template: str, accept: str, spread: int) -> Path:
    """A wrk script cycling over ``spread`` project pages (``template`` has one %d)."""
    path = workdir / f"spread-{'json' if accept == JSON else 'html'}-{abs(hash(template))}.lua"
    path.write_text(
        "local i = 0\n"
        "request = function()\n"
        f"  i = (i + 37) % {spread}\n"
        f'  return wrk.format("GET", string.format("{template}", i), '
        f'{{["Accept"]="{accept}"}})\n'
        "end\n"
    )
    return path


def check_page(base: str, page: str, listing: str) -> tuple[bool, int, str]:
    """Fail loudly when the server would answer wrk with errors or empty pages (which would look
    fast); tell whether it speaks PEP 691 JSON, how big its project list is, and how many kB of
    it cross the wire to a client that accepts gzip."""
    with httpx.Client(base_url=base, timeout=60, trust_env=False) as c:
        r = c.get(page % 1, headers={"Accept": JSON})
        r.raise_for_status()
        json_ok = r.headers.get("content-type", "").startswith(JSON)
        if json_ok and len(r.json()["files"]) != FILES_PER_PROJECT:
            raise RuntimeError(f"{page % 1} lists {len(r.json()['files'])} files, not 10")
        r = c.get(page % 1, headers={"Accept": HTML})
        r.raise_for_status()
        if r.text.count("<a ") < FILES_PER_PROJECT:
            raise RuntimeError(f"{page % 1} (HTML) lists fewer than {FILES_PER_PROJECT} files")
        r = c.get(listing, headers={"Accept": HTML, "Accept-Encoding": "identity"})
        r.raise_for_status()
        with c.stream("GET", listing, headers={"Accept": HTML, **GZIP}) as gz:
            gz.raise_for_status()
            wire = len(b"".join(gz.iter_raw()))
        if gz.headers.get("content-encoding") != "gzip":
            return json_ok, len(r.content), f"{wire / 1000:,.0f} (not compressed)"
        return json_ok, len(r.content), f"{wire / 1000:,.0f}"


def settle(url: str) -> None:
    """Wait (bounded) until requests queued by the previous wrk run are served, so a slow server
    never starts a measurement with a backlog that is not its own."""
    with httpx.Client(timeout=300, trust_env=False) as c:
        c.get(url, headers={"Accept": HTML})


def measure(
    base: str, page: str, listing: str, workdir: Path, seconds: int, projects: int
) -> dict[str, str]:
    json_ok, listing_size, gzip_size = check_page(base, page, listing)
    spread = min(SPREAD, projects)
    html = spread_script(workdir, page, HTML, spread)
    js = spread_script(workdir, page, JSON, spread)

    def load(
        connections: int,
        script: Path | None,
        duration: int = seconds,
        headers: dict[str, str] | None = None,
    ) -> WrkResult:
        settle(base + page % 0)
        url = base if script else base + listing
        return wrk(url, connections=connections, seconds=duration, script=script, headers=headers)

    # Warm caches the way steady traffic would, so the figures are the steady state.
    for script in (html, js, None) if json_ok else (html, None):
        load(8, script, WARMUP_SECONDS)

    out = {"/simple/ list size (kB)": f"{listing_size / 1000:,.0f}"}
    out[METRICS[0]] = load(32, js).rate() if json_ok else "n/a (no JSON)"
    out[METRICS[1]] = load(32, html).rate()
    one = load(1, js if json_ok else html)
    suffix = "" if json_ok else " (HTML)"
    out[METRICS[2]] = f"{one.p50_ms:.2f}{suffix}"
    out[METRICS[3]] = f"{one.p99_ms:.2f}{suffix}"
    out[METRICS[4]] = load(32, None).rate()
    out[METRICS[6]] = load(32, None, headers=GZIP).rate()
    out[METRICS[7]] = gzip_size
    return out


def run_pallet(workdir: Path, data: Path, url: str, seconds: int, projects: int) -> dict[str, str]:
    proc, base = start_pallet(workdir, data, workers=2, database_url=url)
    try:
        return measure(base, "/simple/proj%d/", "/simple/", workdir, seconds, projects)
    finally:
        proc.stop()


def run_pypiserver(
    workdir: Path, projects: int, seconds: int, hash_algo: str | None = "sha256"
) -> dict[str, str]:
    packages = workdir / f"pypiserver-{hash_algo}"
    packages.mkdir()
    for i in range(projects):
        for v in range(FILES_PER_PROJECT):
            (packages / f"proj{i}-1.{v}.tar.gz").write_bytes(f"{i}-{v}".encode())
    proc, base = start_pypiserver(workdir, packages, workers=2, hash_algo=hash_algo)
    try:
        return measure(base, "/simple/proj%d/", "/simple/", workdir, seconds, projects)
    finally:
        proc.stop()


def upload_devpi(base: str, projects: range) -> None:
    """The way devpi users fill an index: one legacy upload per file (about 5 a second)."""
    with httpx.Client(base_url=base, timeout=60, auth=("bench", "bench"), trust_env=False) as c:

        def upload(i: int) -> None:
            for v in range(FILES_PER_PROJECT):
                c.post(
                    "/bench/dev/",
                    data={":action": "file_upload", "name": f"proj{i}", "version": f"1.{v}"},
                    files={"content": (f"proj{i}-1.{v}.tar.gz", f"{i}-{v}".encode())},
                ).raise_for_status()

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(upload, projects))


def clone_devpi_export(export: Path, projects: int) -> None:
    """Turn an export holding ``proj0`` into one holding ``proj0..N-1``, each entry a copy of
    proj0's as devpi itself wrote it (so the format always matches the installed devpi)."""
    index_file = export / "dataindex.json"
    dump = json.loads(index_file.read_text())
    index = dump["indexes"]["bench/dev"]
    project = json.dumps(index["projects"]["proj0"])
    files = [f for f in index["files"] if f["projectname"] == "proj0"]
    for i in range(1, projects):
        index["projects"][f"proj{i}"] = json.loads(project.replace("proj0", f"proj{i}"))
        for entry in files:
            content = f"{i}-{entry['version'].removeprefix('1.')}".encode()
            old = entry["entrymapping"]["hashes"]["sha256"]
            new = json.dumps(entry).replace("proj0", f"proj{i}")
            clone = json.loads(new.replace(old, hashlib.sha256(content).hexdigest()))
            path = export / clone["relpath"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            index["files"].append(clone)
    index_file.write_text(json.dumps(dump))


def run_devpi(workdir: Path, projects: int, seconds: int, seed: str = "import") -> dict[str, str]:
    """Seed over HTTP (slow), or upload one project over HTTP, export, clone it N times and
    ``devpi-import`` the result into a fresh server: devpi's own bulk path, seconds per 1,000."""
    started = time.monotonic()
    proc, base = start_devpi(workdir)
    if seed == "import":
        try:
            upload_devpi(base, range(1))
        finally:
            proc.stop()
        export, server_dir = workdir / "devpi-export", workdir / "devpi-imported"
        run = {"check": True, "capture_output": True, "timeout": 1800}
        subprocess.run(
            [str(BIN / "devpi-export"), "--serverdir", str(workdir / "devpi"), str(export)], **run
        )
        clone_devpi_export(export, projects)
        import_cmd = [str(BIN / "devpi-import"), "--serverdir", str(server_dir)]
        subprocess.run([*import_cmd, "--no-root-pypi", "--no-events", str(export)], **run)
        proc, base = serve_devpi(workdir, server_dir)
    try:
        if seed == "http":
            upload_devpi(base, range(projects))
        took = time.monotonic() - started
        log(f"devpi: {projects:,} projects x 10 files seeded ({seed}) in {took:.0f}s")
        return measure(
            base, "/bench/dev/+simple/proj%d/", "/bench/dev/+simple/", workdir, seconds, projects
        )
    finally:
        proc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="4 s runs, 1,000 Pallet projects only")
    parser.add_argument("--only", choices=["pallet", "pypiserver", "devpi"])
    parser.add_argument(
        "--peer-projects",
        type=int,
        default=1000,
        help="projects (x 10 files) given to pypiserver and devpi-server (default 1000)",
    )
    parser.add_argument(
        "--devpi-seed",
        choices=["import", "http"],
        default="import",
        help="fill devpi by devpi-import of a cloned export (default) or by HTTP uploads "
        "(about 5 files a second: use with a small --peer-projects)",
    )
    parser.add_argument(
        "--database-url",
        help="run Pallet on this empty database (e.g. PostgreSQL); our rows are removed after",
    )
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    ensure_wrk()
    seconds = 4 if args.quick else 10
    scales = [1000] if args.quick else [1000, 10_000]
    workdir = Path(tempfile.mkdtemp(prefix="pallet-read-bench-"))
    columns: list[str] = []
    results: dict[str, dict[str, str]] = {}
    try:
        if args.only in (None, "pallet"):
            data = workdir / "pallet"
            url = args.database_url or f"sqlite:///{data / 'pallet.db'}"
            seeded = 0
            try:
                for n in scales:  # the bigger scale adds projects to the smaller one
                    col = f"pallet ({n:,} projects)"
                    columns.append(col)
                    try:
                        started = time.monotonic()
                        seed_pallet(url, seeded, n)
                        seeded = n
                        took = time.monotonic() - started
                        log(f"pallet: {n:,} projects x 10 files seeded in {took:.1f}s")
                        results[col] = run_pallet(workdir, data, url, seconds, n)
                    except Exception as exc:  # noqa: BLE001 - report and carry on
                        log(f"pallet ({n:,} projects) failed: {exc}")
                        results[col] = {}
                        break
            finally:
                if args.database_url and seeded:
                    unseed_pallet(url, seeded)
        n = args.peer_projects
        peers = [
            ("pypiserver", "pypiserver", lambda: run_pypiserver(workdir, n, seconds)),
            (
                "pypiserver",
                "pypiserver, no hashes",
                lambda: run_pypiserver(workdir, n, seconds, hash_algo=None),
            ),
            ("devpi", "devpi-server", lambda: run_devpi(workdir, n, seconds, args.devpi_seed)),
        ]
        for key, name, runner in peers:
            if args.only not in (None, key):
                continue
            col = f"{name} ({n:,} projects)"
            columns.append(col)
            log(f"{name}: starting")
            try:
                results[col] = runner()
            except Exception as exc:  # noqa: BLE001 - report and carry on with the others
                log(f"{name} failed: {exc}")
                results[col] = {}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    db = "--database-url" if args.database_url else "SQLite"
    table = Table(
        f"Read path: wrk -t2, {seconds} s per figure, up to 100 project pages cycled", columns
    )
    table.notes += [
        f"pallet: {db}, 2 uvicorn workers; pypiserver: gunicorn, 2 sync workers, cached-dir;",
        "devpi-server: one process, as it ships. Server and wrk share this machine's cores.",
        "'-' = that server failed (its error is printed above the table).",
    ]
    for metric in METRICS:
        table.add(metric, {c: results[c].get(metric, "-") for c in columns})
    table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
