"""Read-path benchmark: Pallet's simple index side by side with pypiserver and devpi-server.

Pallet is seeded straight into its database (N projects x 10 files, at 1,000 and 10,000 projects
so one can see whether the figures stay flat as the index grows). The peers get 1,000 projects
each, filled the way their admins would: a folder of files for pypiserver (once with its default
sha256 links, once without hashes), devpi-import of a cloned export for devpi-server (uploading
10,000 files over HTTP would take half an hour). Load comes from wrk on the same machine, spread
over 100 project pages; each server is checked to answer real pages before it is measured.

The ceiling beside each Pallet column is nginx (2 workers) serving the very pages that Pallet
rendered, fetched from it just before it stopped, as static files with the same bytes and
headers: what any Python server could at best approach on this machine. A second table prints
Pallet's throughput as a share of it.

    python benchmarks/read_path.py [--quick] [--only pallet|pypiserver|devpi] [--no-nginx]
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))
from common import (  # noqa: E402
    BIN,
    HOST,
    Table,
    WrkResult,
    ensure_wrk,
    exit_cleanly_on_sigterm,
    free_port,
    log,
    serve_devpi,
    start,
    start_devpi,
    start_pallet,
    start_pypiserver,
    wrk,
)

from pallet.db.engine import make_engine  # noqa: E402
from pallet.db.migrate import upgrade  # noqa: E402
from pallet.db.models import File, JournalEntry, Project, Release  # noqa: E402

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "text/html"
FILES_PER_PROJECT = 10
SPREAD = 100  # distinct project pages the load cycles through
WARMUP_SECONDS = 2

M_JSON = "project page JSON, 32 conn (req/s)"
M_HTML = "project page HTML, 32 conn (req/s)"
M_JSON_GZ = "project page JSON gzip, 32 conn (req/s)"
M_P50 = "project page JSON, 1 conn p50 (ms)"
M_P99 = "project page JSON, 1 conn p99 (ms)"
M_LIST = "/simple/ list, 32 conn (req/s)"
M_LIST_SIZE = "/simple/ list size (kB)"
M_LIST_GZ = "/simple/ list gzip, 32 conn (req/s)"
M_LIST_GZ_SIZE = "/simple/ list gzip, on the wire (kB)"
M_LIST_BR = "/simple/ list br, 32 conn (req/s)"
METRICS = [
    M_JSON,
    M_HTML,
    M_JSON_GZ,
    M_P50,
    M_P99,
    M_LIST,
    M_LIST_SIZE,
    M_LIST_GZ,
    M_LIST_GZ_SIZE,
    M_LIST_BR,
]
# The rows whose Pallet / nginx ratio is printed: throughput, the same request to each.
RATIOS = [M_JSON, M_HTML, M_JSON_GZ, M_LIST, M_LIST_GZ, M_LIST_BR]
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


def spread_script(
    workdir: Path, template: str, accept: str, spread: int, encoding: str | None = None
) -> Path:
    """A wrk script cycling over ``spread`` project pages (``template`` has one %d). wrk's
    ``-H`` headers do not reach requests a script formats, so the coding is asked for here."""
    kind = "json" if accept == JSON else "html"
    path = workdir / f"spread-{kind}-{encoding or 'identity'}-{abs(hash(template))}.lua"
    extra = f', ["Accept-Encoding"]="{encoding}"' if encoding else ""
    path.write_text(
        "local i = 0\n"
        "request = function()\n"
        f"  i = (i + 37) % {spread}\n"
        f'  return wrk.format("GET", string.format("{template}", i), '
        f'{{["Accept"]="{accept}"{extra}}})\n'
        "end\n"
    )
    return path


def wire_size(client: httpx.Client, url: str, encoding: str) -> tuple[str | None, int]:
    """The Content-Encoding answered to ``Accept-Encoding: encoding`` and the bytes sent."""
    with client.stream("GET", url, headers={"Accept": HTML, "Accept-Encoding": encoding}) as r:
        r.raise_for_status()
        return r.headers.get("content-encoding"), len(b"".join(r.iter_raw()))


def check_page(base: str, page: str, listing: str) -> tuple[bool, int, str, bool]:
    """Fail loudly when the server would answer wrk with errors or empty pages (which would look
    fast); tell whether it speaks PEP 691 JSON, how big its project list is, how many kB of it
    cross the wire to a client that accepts gzip, and whether it serves the list in br."""
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
        coding, wire = wire_size(c, listing, "gzip")
        br = wire_size(c, listing, "br")[0] == "br"
        if coding != "gzip":
            return json_ok, len(r.content), f"{wire / 1000:,.0f} (not compressed)", br
        return json_ok, len(r.content), f"{wire / 1000:,.0f}", br


def settle(url: str) -> None:
    """Wait (bounded) until requests queued by the previous wrk run are served, so a slow server
    never starts a measurement with a backlog that is not its own."""
    with httpx.Client(timeout=300, trust_env=False) as c:
        c.get(url, headers={"Accept": HTML})


def measure(
    base: str, page: str, listing: str, workdir: Path, seconds: int, projects: int
) -> dict[str, str]:
    json_ok, listing_size, gzip_size, br = check_page(base, page, listing)
    spread = min(SPREAD, projects)
    html = spread_script(workdir, page, HTML, spread)
    js = spread_script(workdir, page, JSON, spread)
    js_gz = spread_script(workdir, page, JSON, spread, "gzip")

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
    for script in (html, js, js_gz, None) if json_ok else (html, None):
        load(8, script, WARMUP_SECONDS)

    out = {M_LIST_SIZE: f"{listing_size / 1000:,.0f}"}
    out[M_JSON] = load(32, js).rate() if json_ok else "n/a (no JSON)"
    out[M_HTML] = load(32, html).rate()
    out[M_JSON_GZ] = load(32, js_gz).rate() if json_ok else "n/a (no JSON)"
    one = load(1, js if json_ok else html)
    suffix = "" if json_ok else " (HTML)"
    out[M_P50] = f"{one.p50_ms:.2f}{suffix}"
    out[M_P99] = f"{one.p99_ms:.2f}{suffix}"
    out[M_LIST] = load(32, None).rate()
    out[M_LIST_GZ] = load(32, None, headers=GZIP).rate()
    out[M_LIST_GZ_SIZE] = gzip_size
    out[M_LIST_BR] = load(32, None, headers={"Accept-Encoding": "br"}).rate() if br else "n/a"
    return out


# What nginx copies of each answer: the headers that tell a client what it got and how long to
# keep it. (nginx adds Server, Date, Last-Modified and Accept-Ranges of its own.)
COPIED_HEADERS = ("etag", "vary", "content-encoding", "cache-control")


@dataclass
class Snapshot:
    """Pallet's answers stored as files: ``<kind><coding><path>page.<kind>`` under ``root``
    (kind ``j`` JSON or ``h`` HTML, coding ``""``, ``gz`` or ``br``), and their headers."""

    root: Path
    # "/jgz/simple/proj1/page.j" (the file's path under root) -> the headers to send with it
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    codings: set[str] = field(default_factory=set)
    content_types: dict[str, str] = field(default_factory=dict)  # kind -> Content-Type


def snapshot(base: str, page: str, listing: str, spread: int, root: Path) -> Snapshot:
    """Fetch from the running Pallet every page the load will ask for, in each representation
    and coding the load asks for, with the very headers the load sends: the bytes and headers
    nginx will serve for it."""
    shot = Snapshot(root)
    paths = [(page % i, kind) for i in range(spread) for kind in ("j", "h")] + [(listing, "h")]
    with httpx.Client(base_url=base, timeout=60, trust_env=False) as c:
        for path, kind in paths:
            for coding, accept_encoding in (("", "identity"), ("gz", "gzip"), ("br", "br")):
                headers = {"Accept": JSON if kind == "j" else HTML}
                headers["Accept-Encoding"] = accept_encoding
                with c.stream("GET", path, headers=headers) as r:
                    r.raise_for_status()
                    body = b"".join(r.iter_raw())
                    got = r.headers.get("content-encoding", "")
                    if coding and got != accept_encoding:
                        continue  # not served in this coding: nginx answers identity too
                    key = f"/{kind}{coding}{path}page.{kind}"  # the file, as nginx's $uri
                    target = root / key.lstrip("/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(body)
                    copied = {h: r.headers[h] for h in COPIED_HEADERS if h in r.headers}
                    shot.headers[key] = copied
                    shot.content_types[kind] = r.headers["content-type"]
                    if coding:
                        shot.codings.add(coding)
    return shot


def _quoted(value: str) -> str:
    if "'" in value or "\\" in value:
        raise ValueError(f"unexpected character in header value {value!r}")
    return f"'{value}'"


def nginx_config(shot: Snapshot, port: int, prefix: Path, workers: int = 2) -> str:
    """nginx at its best for static pages: sendfile, an open-file cache, no access log, no
    limit on requests per kept-alive connection (uvicorn has none either). The representation
    is chosen from Accept and Accept-Encoding by regex (simpler than Pallet's q-values: the
    ceiling gets the cheaper negotiation), the headers by a map from the file's path (the
    ``$uri`` once ``try_files`` found it)."""
    maps = []
    for header in COPIED_HEADERS:
        entries = "\n".join(
            f"    {_quoted(key)} {_quoted(headers[header])};"
            for key, headers in shot.headers.items()
            if header in headers
        )
        var = header.replace("-", "_")
        maps.append(f"  map $uri $pallet_{var} {{\n    default '';\n{entries}\n  }}")
    codings = ['    "~*\\bbr\\b" br;'] if "br" in shot.codings else []
    codings += ['    "~*\\bgzip\\b" gz;'] if "gz" in shot.codings else []
    types = "\n".join(f"    {_quoted(ct)} {kind};" for kind, ct in shot.content_types.items())
    temp = "\n".join(
        f"  {what}_temp_path {prefix / 'temp' / what};"
        for what in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    add = "\n".join(
        f"      add_header {h.title()} $pallet_{h.replace('-', '_')};" for h in COPIED_HEADERS
    )
    return f"""worker_processes {workers};
daemon off;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{
  worker_connections 4096;
}}
http {{
  access_log off;
  server_tokens off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  open_file_cache max=4096 inactive=300s;
  open_file_cache_valid 300s;
  etag off;
  max_ranges 0;
{temp}
  types {{
{types}
  }}
  default_type application/octet-stream;
  map $http_accept $pallet_kind {{
    default h;
    "~*application/vnd\\.pypi\\.simple\\.v1\\+json" j;
  }}
  map $http_accept_encoding $pallet_coding {{
    default '';
{chr(10).join(codings)}
  }}
{chr(10).join(maps)}
  server {{
    listen {HOST}:{port} reuseport;
    root {shot.root};
    location / {{
      try_files /$pallet_kind$pallet_coding${{uri}}page.$pallet_kind =404;
{add}
    }}
  }}
}}
"""


def nginx_binary() -> str:
    """Debian's nginx, installed when missing by the script the cluster tests use too."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "nginx.sh"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise RuntimeError(f"nginx is not available: {done.stderr[-1000:]}")
    return done.stdout.strip().splitlines()[-1]


def run_nginx(
    workdir: Path, shot: Snapshot, page: str, listing: str, seconds: int, projects: int
) -> dict[str, str]:
    prefix = workdir / "nginx"
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    # Workers started by root run as nobody: they must reach the pages (not list the folders).
    for folder in (workdir, prefix, shot.root):
        folder.chmod(0o711 if folder == workdir else 0o755)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(shot, port, prefix))
    base = f"http://{HOST}:{port}"
    cmd = [nginx_binary(), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    proc = start("nginx", cmd, prefix, f"{base}{listing}", timeout=60)
    try:
        return measure(base, page, listing, workdir, seconds, projects)
    finally:
        proc.stop()


def run_pallet(
    workdir: Path, data: Path, url: str, seconds: int, projects: int, ceiling: bool = True
) -> tuple[dict[str, str], dict[str, str] | None]:
    """Pallet's figures, then (``ceiling``) nginx's serving the pages Pallet rendered."""
    page, listing = "/simple/proj%d/", "/simple/"
    proc, base = start_pallet(workdir, data, workers=2, database_url=url)
    try:
        ours = measure(base, page, listing, workdir, seconds, projects)
        shot = None
        if ceiling:
            root = workdir / f"nginx-pages-{projects}"
            shot = snapshot(base, page, listing, min(SPREAD, projects), root)
    finally:
        proc.stop()
    if shot is None:
        return ours, None
    try:
        return ours, run_nginx(workdir, shot, page, listing, seconds, projects)
    except Exception as exc:  # noqa: BLE001 - Pallet's figures stand without the ceiling
        log(f"nginx failed: {exc}")
        return ours, {}


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
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 s runs, 1,000 Pallet projects only, pypiserver with hashes only",
    )
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
    parser.add_argument(
        "--no-nginx",
        action="store_true",
        help="leave out the ceiling: nginx serving the pages Pallet rendered, as static files",
    )
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    ensure_wrk()
    global WARMUP_SECONDS
    seconds = 3 if args.quick else 10
    if args.quick:
        WARMUP_SECONDS = 1
    scales = [1000] if args.quick else [1000, 10_000]
    workdir = Path(tempfile.mkdtemp(prefix="pallet-read-bench-"))
    columns: list[str] = []
    results: dict[str, dict[str, str]] = {}
    pairs: list[tuple[str, str, int]] = []  # (pallet column, nginx column, projects)
    try:
        if args.only in (None, "pallet"):
            data = workdir / "pallet"
            url = args.database_url or f"sqlite:///{data / 'pallet.db'}"
            seeded = 0
            try:
                for n in scales:  # the bigger scale adds projects to the smaller one
                    col = f"pallet ({n:,} projects)"
                    ceiling = f"nginx, same pages ({n:,} projects)"
                    columns.append(col)
                    if not args.no_nginx:
                        columns.append(ceiling)
                        pairs.append((col, ceiling, n))
                    try:
                        started = time.monotonic()
                        seed_pallet(url, seeded, n)
                        seeded = n
                        took = time.monotonic() - started
                        log(f"pallet: {n:,} projects x 10 files seeded in {took:.1f}s")
                        ours, limit = run_pallet(
                            workdir, data, url, seconds, n, ceiling=not args.no_nginx
                        )
                        results[col] = ours
                        if limit is not None:
                            results[ceiling] = limit
                    except Exception as exc:  # noqa: BLE001 - report and carry on
                        log(f"pallet ({n:,} projects) failed: {exc}")
                        results[col] = {}
                        results.setdefault(ceiling, {})
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
            if args.only not in (None, key) or (args.quick and name == "pypiserver, no hashes"):
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
    if pairs:
        table.notes.insert(
            2,
            "nginx (2 workers) serves the very pages Pallet rendered, as static files with "
            "Pallet's Content-Type, ETag, Vary, Content-Encoding and Cache-Control.",
        )
    for metric in METRICS:
        table.add(metric, {c: results[c].get(metric, "-") for c in columns})
    table.print()
    if pairs:
        ratio_table(results, pairs).print()
    return 0


def _rate(cell: str) -> float | None:
    """The req/s of a table cell ("21,034" or "21,034 (3 err)"); None for a failed figure."""
    try:
        return float(cell.split(" ")[0].replace(",", ""))
    except ValueError:
        return None


def ratio_table(results: dict[str, dict[str, str]], pairs: list[tuple[str, str, int]]) -> Table:
    """Pallet's throughput as a share of nginx serving the same bytes, per request and scale."""
    table = Table(
        "Read path: Pallet as a share of the ceiling (nginx serving the same pages)",
        [f"pallet / nginx ({n:,} projects)" for _, _, n in pairs],
    )
    for metric in RATIOS:
        row = {}
        for (ours, limit, _n), column in zip(pairs, table.columns, strict=True):
            a, b = _rate(results[ours].get(metric, "-")), _rate(results[limit].get(metric, "-"))
            row[column] = f"{a / b:.0%}" if a and b else "-"
        table.add(metric.removesuffix(" (req/s)"), row)
    table.notes.append("Target (issue 12): >= 50% for project pages. Same wrk runs as above.")
    return table


if __name__ == "__main__":
    raise SystemExit(main())
