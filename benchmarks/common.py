"""Shared plumbing for the benchmarks: start and stop servers by PID, sample their memory, run
wrk and print tables. Everything talks to 127.0.0.1 only and every wait is bounded."""

from __future__ import annotations

import os
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], **quiet).returncode:
            subprocess.run(["apt-get", "update", "-qq"], **quiet, check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], **quiet, check=False)
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is needed (Debian package 'wrk'); install it and run again")
    return found


@dataclass
class Proc:
    name: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def rss_kb(self) -> int:
        """Resident memory of the server and all its children (uvicorn workers)."""
        total = 0
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                with open(f"/proc/{pid}/status") as f:
                    m = re.search(r"VmRSS:\s+(\d+)", f.read())
                total += int(m.group(1)) if m else 0
            except OSError:
                continue
        return total


def _children(pid: int) -> list[int]:
    out = []
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            out.append(int(child))
            out.extend(_children(int(child)))
    except OSError:
        pass
    return out


def start(
    name: str,
    cmd: list[str],
    workdir: Path,
    health_url: str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> Proc:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True, env=env
        )
    proc = Proc(name, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(health_url, timeout=2) as r:  # noqa: S310 - loopback
                if r.status < 500:
                    return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.stop()
    raise RuntimeError(f"{name} not ready after {timeout}s:\n{log.read_text()[-2000:]}")


class RssSampler:
    """Peak RSS of a server while a measured operation runs (sampled every 50 ms)."""

    def __init__(self, proc: Proc) -> None:
        self.proc, self.peak, self._stop = proc, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.rss_kb())
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


def wrk(
    url: str,
    *,
    connections: int,
    seconds: int,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
) -> WrkResult:
    cmd = [
        ensure_wrk(),
        "-t",
        str(min(2, connections)),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run(
        cmd + [url], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return WrkResult(rps, _latency(out, "50%"), _latency(out, "99%"), errors)


def _latency(out: str, pct: str) -> float:
    m = re.search(rf"{re.escape(pct)}\s+([\d.]+)(us|ms|s)", out)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, metric: str, values: dict[str, str]) -> None:
        self.rows.append([metric, *(values.get(c, "-") for c in self.columns)])

    def print(self) -> None:
        header = ["metric", *self.columns]
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(len(header))]
        print(f"\n{self.title}")
        for row in [header, ["-" * w for w in widths], *self.rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
