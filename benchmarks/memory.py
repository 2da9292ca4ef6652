"""Idle memory: what each server's processes hold at rest once it has served a little.

Each server is started, warmed (one small upload, the root ``/simple/`` list, the project's page
as HTML and JSON, the file's download), left alone until its processes use no CPU, and then
measured: VmRSS of every process (the parent, workers and any helper such as multiprocessing's
resource tracker), and PSS from ``/proc/<pid>/smaps_rollup`` where the kernel has it. Then one
large wheel is uploaded and, once the server is idle again, measured again: streaming servers
stay flat whatever the file's size.

RSS counts a page in every process that maps it, so the RSS sum counts pages forked workers
share with their parent (or libraries they share) more than once; PSS divides each shared page
between its sharers, and its sum is what the server costs the machine. Issue 12's target is
stated on the RSS sum (Pallet ≤ 120 MiB with 2 workers on the embedded default); both are shown.

    python benchmarks/memory.py [--quick] [--large 256M] [--database-url URL] [--only pallet]
"""

from __future__ import annotations

import argparse
import re
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import (  # noqa: E402
    Proc,
    RssSampler,
    Table,
    ensure_tool,
    exit_cleanly_on_sigterm,
    log,
    pallet_token,
    start_devpi,
    start_pallet,
    start_pypiserver,
    status_kb,
)
from upload import build_wheel, curl_upload  # noqa: E402

from pallet.config import parse_size  # noqa: E402

#: Pallet's budget for 2 workers on the embedded default (issue 12), on the RSS sum.
TARGET_MIB = 120
#: Idle means: no process of the server used CPU for this long.
QUIET_SECONDS = 2.0
SMALL = 10_000


@dataclass
class Sample:
    """One measurement of a server's processes: (role, RSS kB, PSS kB or None) each."""

    processes: list[tuple[str, int, int | None]]

    @property
    def rss(self) -> int:
        return sum(r for _, r, _ in self.processes)

    @property
    def pss(self) -> int | None:
        values = [p for _, _, p in self.processes]
        return None if any(v is None for v in values) else sum(v or 0 for v in values)


def pss_kb(pid: int) -> int | None:
    try:
        m = re.search(r"^Pss:\s+(\d+)", Path(f"/proc/{pid}/smaps_rollup").read_text(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def role(pid: int, parent: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    if "resource_tracker" in cmdline:
        return "resource tracker"
    if "forkserver" in cmdline:
        return "forkserver"
    return "parent" if pid == parent else "worker"


def wait_idle(proc: Proc, timeout: float = 60) -> None:
    """Until no process of ``proc`` used CPU for ``QUIET_SECONDS`` (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    last = {pid: cpu_ticks(pid) for pid in proc.pids()}
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = {pid: cpu_ticks(pid) for pid in proc.pids()}
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_SECONDS:
            return
    log(f"{proc.name}: still busy after {timeout:.0f}s; measuring anyway")


def sample(proc: Proc) -> Sample:
    """The processes at rest: the largest of three readings a second apart, per process."""
    wait_idle(proc)
    best: dict[int, tuple[str, int, int | None]] = {}
    for i in range(3):
        if i:
            time.sleep(1)
        for pid in proc.pids():
            rss, pss = status_kb(pid), pss_kb(pid)
            old = best.get(pid)
            if rss and (old is None or rss > old[1]):
                best[pid] = (role(pid, proc.process.pid), rss, pss)
    order = {"parent": 0, "resource tracker": 2, "forkserver": 2}
    return Sample(sorted(best.values(), key=lambda p: (order.get(p[0], 1), p[0])))


def mib(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:,.0f}"


def listing(processes: list[tuple[str, int, int | None]], pss: bool) -> str:
    return ", ".join(f"{name} {mib(p if pss else r)}" for name, r, p in processes)


# -- warming each server ------------------------------------------------------------------------


def warm(client: httpx.Client, index: str, project: str, filename: str) -> None:
    """The read path a pip install walks: root list, project page (HTML and JSON), the file."""
    for accept in ("text/html", "application/vnd.pypi.simple.v1+json", "text/html"):
        client.get(f"{index}", headers={"Accept": accept}).raise_for_status()
        page = client.get(f"{index}{project}/", headers={"Accept": accept})
        page.raise_for_status()
    link = re.search(rf'href="([^"]*{re.escape(filename)}[^"]*)"', page.text)
    if not link:
        raise RuntimeError(f"{index}{project}/ does not list {filename}")
    client.get(str(page.url.join(link.group(1).split("#")[0]))).raise_for_status()


@dataclass
class Target:
    name: str
    proc: Proc
    upload_url: str
    index: str  # the simple index's root, ending in /
    auth: str | None


def measure(target: Target, small: Path, large: Path) -> dict[str, Sample | int]:
    """Warm with the small wheel, measure; upload the large one, measure again."""
    project = small.name.split("-")[0]
    with httpx.Client(timeout=120, trust_env=False, follow_redirects=True) as client:
        curl_upload(target.upload_url, small, project, target.auth)
        warm(client, target.index, project, small.name)
        idle = sample(target.proc)
        with RssSampler(target.proc) as peak:
            curl_upload(target.upload_url, large, large.name.split("-")[0], target.auth)
        warm(client, target.index, large.name.split("-")[0], large.name)
        after = sample(target.proc)
    return {"idle": idle, "after": after, "peak": peak.peak}


def run_pallet(workdir: Path, small: Path, large: Path, database_url: str | None) -> dict:
    data = workdir / f"pallet-{secrets.token_hex(4)}"
    proc, base = start_pallet(workdir, data, workers=2, database_url=database_url)
    try:
        token = pallet_token(data, database_url)
        return measure(
            Target("pallet", proc, f"{base}/legacy/", f"{base}/simple/", f"__token__:{token}"),
            small,
            large,
        )
    finally:
        proc.stop()
        shutil.rmtree(data, ignore_errors=True)


def run_pypiserver(workdir: Path, small: Path, large: Path) -> dict:
    packages = workdir / "pypiserver"
    packages.mkdir()
    proc, base = start_pypiserver(workdir, packages, workers=2)
    try:
        return measure(
            Target("pypiserver", proc, f"{base}/", f"{base}/simple/", None), small, large
        )
    finally:
        proc.stop()
        shutil.rmtree(packages, ignore_errors=True)


def run_devpi(workdir: Path, small: Path, large: Path) -> dict:
    proc, base = start_devpi(workdir)
    try:
        return measure(
            Target(
                "devpi", proc, f"{base}/bench/dev/", f"{base}/bench/dev/+simple/", "bench:bench"
            ),
            small,
            large,
        )
    finally:
        proc.stop()
        shutil.rmtree(workdir / "devpi", ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--large", help="size of the large wheel (default 512M, --quick 64M)")
    parser.add_argument(
        "--database-url", "--postgres", help="also run Pallet on this PostgreSQL database"
    )
    parser.add_argument("--only", choices=["pallet", "pypiserver", "devpi"])
    parser.add_argument("--quick", action="store_true", help="a smaller large file")
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    ensure_tool("curl")
    large_size = parse_size(args.large or ("64M" if args.quick else "512M"))
    workdir = Path(tempfile.mkdtemp(prefix="pallet-memory-bench-"))
    results: dict[str, dict] = {}
    try:
        tag = secrets.token_hex(3)  # a database reused between runs never sees a name twice
        small = build_wheel(workdir, f"memsmall{tag}", SMALL)
        large = build_wheel(workdir, f"memlarge{tag}", large_size)
        runners = [("pallet", lambda: run_pallet(workdir, small, large, None))]
        if args.database_url:
            runners.append(
                (
                    "pallet (PostgreSQL)",
                    lambda: run_pallet(workdir, small, large, args.database_url),
                )
            )
        runners += [
            ("pypiserver", lambda: run_pypiserver(workdir, small, large)),
            ("devpi-server", lambda: run_devpi(workdir, small, large)),
        ]
        for name, runner in runners:
            if args.only not in (None, name.split()[0].removesuffix("-server")):
                continue
            log(f"{name}: starting, warming, waiting for idle")
            try:
                results[name] = runner()
            except Exception as exc:  # noqa: BLE001 - report and carry on with the others
                log(f"{name} failed: {exc}")
                results[name] = {}
        large_mib = large.stat().st_size / 2**20
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(results, large_mib)
    return 0


def print_table(results: dict[str, dict], large_mib: float) -> None:
    table = Table("Idle memory (MiB), after a few requests and an upload", list(results))

    def row(metric: str, value) -> None:  # noqa: ANN001
        table.add(metric, {k: value(k, v) for k, v in results.items() if v})

    row("processes", lambda k, v: str(len(v["idle"].processes)))
    row("RSS total, idle", lambda k, v: mib(v["idle"].rss))
    row("PSS total, idle", lambda k, v: mib(v["idle"].pss))
    row("RSS per process, idle", lambda k, v: listing(v["idle"].processes, pss=False))
    row("PSS per process, idle", lambda k, v: listing(v["idle"].processes, pss=True))
    row(f"RSS peak during a {large_mib:,.0f} MiB upload", lambda k, v: mib(v["peak"]))
    row("RSS total, idle after it", lambda k, v: mib(v["after"].rss))
    row("PSS total, idle after it", lambda k, v: mib(v["after"].pss))
    row(
        f"target: RSS total, idle ≤ {TARGET_MIB}",
        lambda k, v: (
            ("met" if v["idle"].rss <= TARGET_MIB * 1024 else "missed") if k == "pallet" else "n/a"
        ),
    )
    table.notes += [
        "pallet: pallet serve --workers 2 on the embedded default (SQLite, files on disk) unless",
        "noted; pypiserver: gunicorn, 2 sync workers; devpi-server: one process. RSS counts a page",
        "shared between processes once in each; PSS shares it out. The target is issue 12's, for",
        "the embedded default. '-' = not measured or failed (error printed above).",
    ]
    table.print()


if __name__ == "__main__":
    raise SystemExit(main())
