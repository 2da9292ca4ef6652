"""Shared plumbing for the benchmarks: start and stop servers by PID, sample their memory, run
wrk and print tables. Everything talks to 127.0.0.1 only and every wait is bounded."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
# Health checks must never leave the machine, whatever *_proxy the caller's shell exports.
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def log(message: str) -> None:
    """Progress goes to stderr so stdout stays the tables alone."""
    print(message, file=sys.stderr, flush=True)


def exit_cleanly_on_sigterm() -> None:
    """A SIGTERM to the benchmark unwinds through ``finally`` blocks, so no server is left over."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def ensure_tool(name: str, debian_package: str | None = None) -> str:
    """The path of ``name``; as root, apt-get installs it first (refreshing the lists if needed)."""
    found = shutil.which(name)
    if found:
        return found
    package = debian_package or name
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log(f"{name} missing: apt-get install -y {package}")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "timeout": 600}
        try:
            if subprocess.run(["apt-get", "install", "-y", "-qq", package], **quiet).returncode:
                subprocess.run(["apt-get", "update", "-qq"], **quiet, check=False)
                subprocess.run(["apt-get", "install", "-y", "-qq", package], **quiet, check=False)
        except subprocess.TimeoutExpired:
            pass
    found = shutil.which(name)
    if not found:
        sys.exit(
            f"{name} is needed (Debian package '{package}'): install it, or run as root so this "
            "script can apt-get it, and run again"
        )
    return found


def ensure_wrk() -> str:
    return ensure_tool("wrk")


def _start_time(pid: int) -> str | None:
    """The kernel's start tick of ``pid``: with the pid it names one process, never a reused pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    out = []
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            out.append(int(child))
            out.extend(_children(int(child)))
    except OSError:
        pass
    return out


def status_kb(pid: int, field: str = "VmRSS") -> int:
    """A memory field of /proc/<pid>/status in kB (0 once the process is gone)."""
    try:
        m = re.search(rf"{field}:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return 0
    return int(m.group(1)) if m else 0


@dataclass
class Proc:
    name: str
    process: subprocess.Popen
    log: Path

    def pids(self) -> list[int]:
        return [self.process.pid, *_children(self.process.pid)]

    def stop(self) -> None:
        """SIGTERM the server, then any worker that outlived it, each by its own pid."""
        family = {pid: _start_time(pid) for pid in _children(self.process.pid)}
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            alive = [p for p, t in family.items() if t is not None and _start_time(p) == t]
            for pid in alive:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while alive and time.monotonic() < deadline:
                alive = [p for p in alive if _start_time(p) == family[p]]
                time.sleep(0.1)
            if not alive:
                return

    def rss_kb(self) -> tuple[int, int]:
        """Resident memory of the server and all its children: (sum, largest single process)."""
        sizes = [status_kb(pid) for pid in self.pids()]
        return sum(sizes), max(sizes, default=0)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server and its children have used so far."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone since it was listed
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
        return total / os.sysconf("SC_CLK_TCK")


def start(
    name: str,
    cmd: list[str],
    workdir: Path,
    health_url: str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> Proc:
    """Run ``cmd`` (its output in ``workdir/<name>.log``) until ``health_url`` answers."""
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as out:
        # A session of its own: a Ctrl-C in the terminal reaches only us, and we stop the server.
        process = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True, env=env
        )
    proc = Proc(name, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{log_path.read_text()[-2000:]}")
        try:
            with _LOOPBACK.open(health_url, timeout=2) as r:
                if r.status < 500:
                    return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.stop()
    raise RuntimeError(f"{name} not ready after {timeout:.0f}s:\n{log_path.read_text()[-2000:]}")


def start_pallet(
    workdir: Path,
    data: Path,
    *,
    workers: int = 2,
    database_url: str | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[Proc, str]:
    """Pallet as deployed: `pallet serve` (uvicorn workers), no access log, migrating at start."""
    port = free_port()
    base = f"http://{HOST}:{port}"
    cmd = [
        str(BIN / "pallet"),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--workers",
        str(workers),
        "--no-access-log",
    ]
    if database_url:
        cmd += ["--database-url", database_url]
    return start("pallet", [*cmd, *extra], workdir, f"{base}/_/health"), base


def pallet_token(data: Path, database_url: str | None = None) -> str:
    cmd = [str(BIN / "pallet"), "token", "create", "--data-dir", str(data), "--scope", "upload"]
    if database_url:
        cmd += ["--database-url", database_url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
    return out.strip().splitlines()[-1]


def start_pypiserver(
    workdir: Path, packages: Path, *, workers: int = 2, hash_algo: str | None = "sha256"
) -> tuple[Proc, str]:
    """pypiserver as its docs deploy it for load: under gunicorn (here with as many workers as
    Pallet), the cached-dir backend, no authentication, no fallback to pypi.org; links carry
    ``#sha256=`` (its default) unless ``hash_algo`` is None."""
    port = free_port()
    base = f"http://{HOST}:{port}"
    gunicorn = BIN / "gunicorn"
    if not gunicorn.exists():
        raise RuntimeError("gunicorn is missing from the venv (pip install -e '.[bench]')")
    factory = (
        f"pypiserver:app(roots=[{str(packages)!r}], authenticate=[], password_file='.', "
        f"hash_algo={hash_algo!r}, backend_arg='cached-dir', disable_fallback=True)"
    )
    cmd = [str(gunicorn), "--workers", str(workers), "--bind", f"{HOST}:{port}"]
    cmd += ["--timeout", "900", "--log-level", "warning"]
    help_text = subprocess.run(
        [str(gunicorn), "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    if "--no-control-socket" in help_text:  # gunicorn >= 25 would otherwise share ~/.gunicorn
        cmd.append("--no-control-socket")
    return start("pypiserver", [*cmd, factory], workdir, f"{base}/health", timeout=300), base


def init_devpi(server_dir: Path, bin_dir: Path = BIN) -> None:
    """An empty devpi-server state (no root/pypi mirror: nothing may leave the machine)."""
    for tool in ("devpi-init", "devpi-server"):
        if not (bin_dir / tool).exists():
            raise RuntimeError(f"{tool} is missing from the venv (pip install -e '.[bench]')")
    cmd = [str(bin_dir / "devpi-init"), "--serverdir", str(server_dir), "--no-root-pypi"]
    subprocess.run([*cmd, "--root-passwd", "root"], check=True, capture_output=True, timeout=300)


def serve_devpi(workdir: Path, server_dir: Path, bin_dir: Path = BIN) -> tuple[Proc, str]:
    port = free_port()
    base = f"http://{HOST}:{port}"
    cmd = [
        str(bin_dir / "devpi-server"),
        "--serverdir",
        str(server_dir),
        "--host",
        HOST,
        "--port",
        str(port),
        "--max-request-body-size",
        str(4 * 2**30),
    ]
    return start("devpi", cmd, workdir, f"{base}/+api", timeout=300), base


def start_devpi(workdir: Path, bin_dir: Path = BIN) -> tuple[Proc, str]:
    """A fresh devpi-server with user ``bench`` (password ``bench``) and index ``bench/dev``;
    ``bin_dir`` names another venv's (the one with devpi-web)."""
    import httpx

    server_dir = workdir / "devpi"
    init_devpi(server_dir, bin_dir)
    proc, base = serve_devpi(workdir, server_dir, bin_dir)
    try:
        with httpx.Client(base_url=base, timeout=60, trust_env=False) as c:
            c.put("/bench", json={"password": "bench"}).raise_for_status()
            c.auth = ("bench", "bench")
            c.put("/bench/dev", json={"bases": [], "volatile": True}).raise_for_status()
    except Exception:
        proc.stop()
        raise
    return proc, base


class RssSampler:
    """Peak RSS of a server while a measured operation runs (sampled every 50 ms), in kB: of all
    its processes together and of the largest one (the worker that took the request)."""

    def __init__(self, proc: Proc) -> None:
        self.proc, self.peak, self.peak_single = proc, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total, single = self.proc.rss_kb()
            self.peak, self.peak_single = max(self.peak, total), max(self.peak_single, single)
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int

    def rate(self) -> str:
        return f"{self.rps:,.0f}" + (f" ({self.errors} err)" if self.errors else "")


def wrk(
    url: str,
    *,
    connections: int,
    seconds: int,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
) -> WrkResult:
    cmd = [ensure_wrk(), "-t", str(min(2, connections)), "-c", str(connections)]
    cmd += ["-d", f"{seconds}s", "--latency", "--timeout", "10s"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    if script:
        cmd += ["-s", str(script)]
    done = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60)
    out = done.stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if done.returncode or not found:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or out}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return WrkResult(float(found.group(1)), _latency(out, "50"), _latency(out, "99"), errors)


def _latency(out: str, pct: str) -> float:
    """A percentile from wrk's ``--latency`` distribution, in milliseconds."""
    m = re.search(rf"^\s+{pct}(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, metric: str, values: dict[str, str]) -> None:
        self.rows.append([metric, *(values.get(c, "-") for c in self.columns)])

    def lines(self) -> list[str]:
        """The table as Markdown (pipes and a dashed rule), notes indented after it."""
        header = ["metric", *self.columns]
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(len(header))]
        out = []
        for row in [header, ["-" * w for w in widths], *self.rows]:
            cells = " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            out.append(f"| {cells} |")
        return out + ([""] if self.notes else []) + [f"  {note}" for note in self.notes]

    def print(self) -> None:
        """Print the table, and append it to the day's results file (see ``results_file``)."""
        print(f"\n{self.title}")
        print("\n".join(self.lines()))
        sys.stdout.flush()
        self.save()

    def save(self, path: Path | None = None) -> Path | None:
        path = path or results_file()
        if path is None:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            if path.stat().st_size == 0:
                out.write(f"# Benchmark results, {_dt.date.today().isoformat()}\n")
            marker = f"<!-- run {run_id()} -->"
            if marker not in path.read_text(encoding="utf-8"):
                out.write(f"\n{marker}\n{machine_context()}")
            script = f"{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}".rstrip()
            out.write(f"\n### {self.title}\n\n`{script}`\n\n")
            out.write("\n".join(self.lines()) + "\n")
        return path


# Where the tables go besides stdout. ``make bench`` sets PALLET_BENCH_RUN once for all its
# scripts, so the machine context is written once per run; a script run by hand is a run alone.
RESULTS_DIR = Path(__file__).resolve().parent / "results"
RESULTS_ENV = "PALLET_BENCH_RESULTS"  # a file to append to instead, or "off"
RUN_ENV = "PALLET_BENCH_RUN"
_RUN_ID = f"{_dt.datetime.now().strftime('%Y-%m-%dT%H:%M:%S')}-{os.getpid()}"
_LOAD_AT_START = os.getloadavg()
_COMMIT_AT_START = ""  # set at the end of this module: what was checked out as the script began


def run_id() -> str:
    return os.environ.get(RUN_ENV) or _RUN_ID


def results_file() -> Path | None:
    """``benchmarks/results/<YYYY-MM-DD>.md``; ``<date>-quick.md`` when the script was given
    ``--quick`` or ``PALLET_BENCH_QUICK`` is set (``make bench-quick``): small sizes are not
    the day's figures. ``PALLET_BENCH_RESULTS=off`` writes nothing, a path writes there."""
    chosen = os.environ.get(RESULTS_ENV, "")
    if chosen.lower() in ("off", "0", "no", "none"):
        return None
    if chosen:
        return Path(chosen)
    quick = "--quick" in sys.argv[1:] or bool(os.environ.get("PALLET_BENCH_QUICK"))
    return RESULTS_DIR / f"{_dt.date.today().isoformat()}{'-quick' if quick else ''}.md"


def _first_line(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else "not found"


def _package(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )


def machine_context() -> str:
    """What the figures depend on: processor, memory, kernel, Python, the server stack's and
    the load tools' versions, and the commit measured (``+dirty`` when the tree had changes)."""
    cpu = "unknown"
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = found.group(1).strip() if found else platform.processor() or "unknown"
    except OSError:
        pass
    ram = status_like("/proc/meminfo", "MemTotal")
    root = Path(__file__).resolve().parent.parent
    commit = _COMMIT_AT_START or _commit(root)
    nginx = _nginx()
    wrk_path = shutil.which("wrk")
    rows = {
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "RAM": f"{ram / 2**30:.1f} GiB" if ram else "unknown",
        "kernel": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "uvicorn / starlette / sqlalchemy": " / ".join(
            _package(p) for p in ("uvicorn", "starlette", "sqlalchemy")
        ),
        "uvloop / httptools": " / ".join(_package(p) for p in ("uvloop", "httptools")),
        "nginx": _first_line([nginx, "-v"]).split("/", 1)[-1] if nginx else "not installed",
        "wrk": _first_line([wrk_path, "-v"]).split(" [")[0].removeprefix("wrk ")
        if wrk_path
        else "not installed",
        "commit": commit + _source(root),
        "load average as this script started": " ".join(f"{x:.2f}" for x in _LOAD_AT_START),
    }
    lines = [f"## Run {run_id()}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows.items()]
    return "\n".join(lines) + "\n"


def _commit(root: Path) -> str:
    """HEAD, ``+dirty`` when tracked files differ from it."""
    commit = _first_line(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"])
    dirty = _first_line(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"])
    return commit + ("+dirty" if dirty not in ("", "not found") else "")


def _source(root: Path) -> str:
    """Where the measured servers' ``pallet`` comes from, when not this checkout's ``src``
    (``PYTHONPATH`` naming an export of a commit, for one): then the tree's state says nothing."""
    found = subprocess.run(
        [sys.executable, "-c", "import pallet; print(pallet.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    if not found or Path(found).resolve().is_relative_to(root / "src"):
        return ""
    return " (pallet imported from outside this checkout: its changes were not measured)"


def status_like(path: str, key: str) -> int:
    """A ``key: N kB`` field of a /proc file, in bytes (0 when missing)."""
    try:
        m = re.search(rf"^{key}:\s+(\d+)", Path(path).read_text(), re.MULTILINE)
    except OSError:
        return 0
    return int(m.group(1)) * 1024 if m else 0


_COMMIT_AT_START = _commit(Path(__file__).resolve().parent.parent)
