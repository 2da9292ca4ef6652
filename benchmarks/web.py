"""The web UI's project page: latency and throughput for a project with 500 releases.

The target (issue 14) is p99 <= 20 ms for that page. Side by side in one run, on one
``pallet serve --workers 2`` over SQLite:

- the project page (``/project/<name>/``: 500 releases in its history, a Markdown README, the
  latest release's files), signed out, as a browser revalidates it and as a first visit;
- the same project's PEP 503 simple page (the read path Pallet is built around);
- the peer: devpi-web (devpi-server's web UI plugin) with the same 500 releases and README,
  its project page (the version list) and its release page (README and files); devpi-server is
  one process, with its default threads;
- the limit: nginx serving the very bytes of the rendered project page as a static file.

Each is loaded by wrk: one connection (p50/p99) and 32 connections (req/s, p99), after a
warm-up run of each.

    python benchmarks/web.py [--releases 500] [--seconds 8] [--quick] [--no-peer]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
from common import (  # noqa: E402
    HOST,
    Proc,
    Table,
    ensure_wrk,
    exit_cleanly_on_sigterm,
    free_port,
    log,
    start_devpi,
    start_pallet,
    wrk,
)

from pallet.config import Settings  # noqa: E402
from pallet.db.engine import make_engine  # noqa: E402
from pallet.db.migrate import upgrade  # noqa: E402
from pallet.db.models import File, JournalEntry, Project, Release  # noqa: E402

README = "# Big\n\n" + "\n\n".join(
    f"## Section {i}\n\nSome **text** with `code` and a [link](https://example.com/{i})."
    for i in range(40)
)


def seed(data: Path, releases: int, name: str = "big") -> None:
    """One project, ``releases`` releases of two files each, straight into the tables."""
    engine = make_engine(Settings(data_dir=data).resolved(secret=False).database_url)
    upgrade(engine)
    start_time = datetime(2024, 1, 1, tzinfo=UTC)
    info = {
        "summary": "A project with a long history",
        "description": README,
        "description_content_type": "text/markdown",
        "requires_python": ">=3.9",
        "license_expression": "MIT",
        "classifiers": ["Programming Language :: Python :: 3"] * 5,
        "project_urls": {"Source": "https://example.com/src"},
        "requires_dist": ["httpx>=0.27", "rich>=13"],
    }
    with Session(engine) as s, s.begin():
        s.execute(insert(Project), [{"id": 1, "name": name, "normalized_name": name,
                                     "created": start_time, "last_serial": 1}])  # fmt: skip
        s.execute(insert(JournalEntry), [{"id": 1, "project_id": 1, "action": "seed",
                                          "submitted": start_time}])  # fmt: skip
        s.execute(
            insert(Release),
            [
                {"id": v + 1, "project_id": 1, "version": f"1.{v}", "canonical_version": f"1.{v}",
                 "created": start_time + timedelta(days=v), "yanked": v % 50 == 7,
                 "requires_python": ">=3.9", "info": {**info, "version": f"1.{v}"}}
                for v in range(releases)
            ],
        )  # fmt: skip
        s.execute(
            insert(File),
            [
                {"release_id": v + 1, "filename": f"{name}-1.{v}{suffix}", "size": 12345,
                 "sha256": f"{v:064x}", "upload_time": start_time + timedelta(days=v),
                 "packagetype": kind, "python_version": "py3", "published": True,
                 "uploaded_via": "legacy"}
                for v in range(releases)
                for suffix, kind in (("-py3-none-any.whl", "bdist_wheel"), (".tar.gz", "sdist"))
            ],
        )  # fmt: skip
    engine.dispose()


def devpi_web_bin() -> Path:
    """The bin folder of a venv holding devpi-server with devpi-web, as pyproject's
    ``bench-devpi-web`` extra names them (made once, kept in the user's cache)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    spec = pyproject["project"]["optional-dependencies"]["bench-devpi-web"]
    venv = Path.home() / ".cache" / "pallet" / "bench" / "devpi-web"
    stamp = venv / "installed-from.txt"
    if stamp.exists() and stamp.read_text() == "\n".join(spec):
        return venv / "bin"
    log(f"installing {', '.join(spec)} into a venv of its own")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *spec], check=True, timeout=1800)
    stamp.write_text("\n".join(spec))
    return venv / "bin"


def seed_devpi(base: str, releases: int) -> None:
    """The same releases, README and files as ``seed``, uploaded as devpi users upload."""
    with httpx.Client(base_url=base, timeout=120, auth=("bench", "bench"), trust_env=False) as c:

        def upload(v: int) -> None:
            meta = {":action": "file_upload", "name": "big", "version": f"1.{v}",
                    "metadata_version": "2.4", "summary": "A project with a long history",
                    "description": README, "description_content_type": "text/markdown",
                    "requires_python": ">=3.9", "license_expression": "MIT"}  # fmt: skip
            for suffix in ("-py3-none-any.whl", ".tar.gz"):
                c.post("/bench/dev/", data=meta,
                       files={"content": (f"big-1.{v}{suffix}", f"1.{v}{suffix}".encode())},
                       ).raise_for_status()  # fmt: skip

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(upload, range(releases)))


def wait_until_idle(proc: Proc, limit: float = 600) -> None:
    """Until the server's processes use under 5% of a core for 2 s (bounded by ``limit``)."""
    deadline = time.monotonic() + limit
    last = _cpu_seconds(proc)
    while time.monotonic() < deadline:
        time.sleep(2)
        now = _cpu_seconds(proc)
        if now - last < 0.1:
            return
        last = now
    log(f"{proc.name} still busy after {limit:.0f} s; measuring anyway")


def _cpu_seconds(proc: Proc) -> float:
    ticks = 0
    for pid in proc.pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(runs: dict[str, tuple[str, dict]], seconds: int) -> dict:
    """wrk's figures for each run: (1 connection, 32 connections)."""
    for url, headers in runs.values():
        # Warm-up, not measured: each of a server's workers builds its own copy of a page on
        # its first visit (that cost is the "first visit" note), and wrk's first run against
        # a new server shows a tail that the server's own event-loop lag probe does not.
        wrk(url, connections=32, seconds=2, headers=headers)
    results = {}
    for name, (url, headers) in runs.items():
        one = wrk(url, connections=1, seconds=seconds, headers=headers)
        many = wrk(url, connections=32, seconds=seconds, headers=headers)
        results[name] = (one, many)
        log(f"{name}: 1 conn p99 {one.p99_ms:.2f} ms, 32 conn {many.rps:,.0f} req/s")
    return results


def nginx_static(workdir: Path, body: bytes) -> tuple[subprocess.Popen, str]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    root = workdir / "static"
    (root / "project" / "big").mkdir(parents=True)
    (root / "project" / "big" / "index.html").write_bytes(body)
    for folder in (workdir, root, root / "project", root / "project" / "big"):
        folder.chmod(0o755)  # nginx's workers run as another user
    (root / "project" / "big" / "index.html").chmod(0o644)
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"worker_processes 2; daemon off; pid {workdir}/nginx.pid; error_log {workdir}/nginx.err;\n"
        "events { worker_connections 1024; }\n"
        f"http {{ access_log off; sendfile on; open_file_cache max=100; types {{ text/html html; }}\n"
        f"  server {{ listen {HOST}:{port}; root {root}; index index.html; }} }}\n"
    )
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://{HOST}:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{base}/project/big/", timeout=1)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nginx did not start")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--releases", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="3 s per figure")
    parser.add_argument("--no-peer", action="store_true", help="leave devpi-web out")
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    ensure_wrk()
    seconds = 3 if args.quick else args.seconds
    workdir = Path(tempfile.mkdtemp(prefix="pallet-web-bench-"))
    data = workdir / "data"
    seed(data, args.releases)
    peer_bin = None if args.no_peer else devpi_web_bin()
    pallet, base = start_pallet(workdir, data, workers=2)
    nginx = devpi = None
    try:
        first = httpx.get(f"{base}/project/big/", timeout=30)
        first.raise_for_status()
        etag = first.headers["etag"]
        cold_ms = first.elapsed.total_seconds() * 1000  # built from the database: the first visit
        log(f"project page: {len(first.content) // 1024} kB, {first.text.count('<li')} list items")
        nginx, static = nginx_static(workdir, first.content)
        html = {"Accept": "text/html"}
        runs = {
            "project page": (f"{base}/project/big/", {}),
            "project page, gzip": (f"{base}/project/big/", {"Accept-Encoding": "gzip"}),
            "project page, revalidated (304)": (f"{base}/project/big/", {"If-None-Match": etag}),
            "simple page (HTML)": (f"{base}/simple/big/", {}),
            "nginx, the same bytes (limit)": (f"{static}/project/big/", {}),
        }
        results = measure(runs, seconds)
        nginx.terminate()
        nginx.wait(timeout=10)
        nginx = None
        pallet.stop()  # the peer runs alone, as Pallet did
        if peer_bin is not None:
            devpi, peer = start_devpi(workdir, peer_bin)
            took = datetime.now()
            seed_devpi(peer, args.releases)
            log(f"devpi-web: {args.releases} releases uploaded in {datetime.now() - took}")
            wait_until_idle(devpi)  # devpi-web indexes uploads in the background
            latest = f"1.{args.releases - 1}"
            for path in ("/bench/dev/big", f"/bench/dev/big/{latest}"):
                httpx.get(f"{peer}{path}", headers=html, timeout=60).raise_for_status()
            peer_runs = {
                "devpi-web project page": (f"{peer}/bench/dev/big", html),
                "devpi-web release page": (f"{peer}/bench/dev/big/{latest}", html),
            }
            results.update(measure(peer_runs, seconds))
            runs.update(peer_runs)
        table = Table(
            f"Web UI: a project page with {args.releases} releases (wrk, {seconds} s per figure)",
            list(runs),
        )
        table.add("1 conn p50 (ms)", {n: f"{r[0].p50_ms:.2f}" for n, r in results.items()})
        table.add("1 conn p99 (ms)", {n: f"{r[0].p99_ms:.2f}" for n, r in results.items()})
        table.add("32 conn (req/s)", {n: r[1].rate() for n, r in results.items()})
        table.add("32 conn p99 (ms)", {n: f"{r[1].p99_ms:.2f}" for n, r in results.items()})
        table.notes.append(
            f"The first visit after a publish builds the page: {cold_ms:.1f} ms here "
            "(query, README rendering, template); later visits are answered from the page "
            "cached for that serial."
        )
        if peer_bin is not None:
            table.notes.append(
                "devpi-web ran alone after Pallet was stopped, measured once its background "
                "indexer was idle."
            )
        table.print()  # and saves it
        print("\n  Issue 14 asks the project page's p99 <= 20 ms with 500 releases.")
        return 0
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=10)
        if devpi is not None:
            devpi.stop()
        pallet.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
