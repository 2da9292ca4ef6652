"""Pre-signed benchmark: Pallet's upload mechanisms against what the store itself allows.

For each backend (a real SeaweedFS S3 gateway, then Pallet's local disk store) and each size
(``--sizes``, 1M,100M,1G), in one run:

- **limits**, each a fresh Python process, timed from its start to its exit like ``pallet
  publish``:
  - *sha256 + PUT*: one sha256 pass over the file, then one PUT of it (httpx, 1 MiB chunks) to
    a pre-signed URL that Pallet issued for it, with the headers Pallet binds. On S3 that is a
    SigV4 URL of the store; on the local backend it is Pallet's own signed endpoint;
  - *sha256 + boto3* (S3 only): the sha256 pass, then boto3's own ``upload_file`` (managed
    multipart at its defaults).
- **Pallet**: ``pallet publish --mechanism M`` of one wheel, process start to published, for
  ``vnd-pallet-presigned-put``, ``vnd-pallet-s3multipart-presigned`` and ``http-post-bytes``.
  The run counts only if the PEP 691 page then lists the file with its true sha256.
- **server CPU per file**: user + system time of every Pallet process (``/proc/<pid>/stat``,
  in clock ticks of 10 ms) before and after, summed over the runs of that size and divided by
  their number; the store's own CPU is shown apart. A second row takes out what Pallet spent
  while the sha256 + PUT limit ran: on S3 its idle work alone (timers, housekeeping), on the
  local backend the store's work, which Pallet's signed endpoint does there.
- **peak RSS** of Pallet (all processes, sampled every 50 ms) and of the client (VmHWM).
- **a timeline** of one pre-signed upload, step by step, driven over HTTP by this script:
  wall time and Pallet's CPU for each of sha256, create session, create file, PUT, complete
  and publish.

Every run uploads a wheel of its own (fresh random payload), so no run finds another's bytes
already stored. MB/s are 10^6 B/s over the wall time; a ratio is Pallet's MB/s over the limit's.

    python benchmarks/presigned.py [--sizes 1M,100M,1G] [--backend s3|local]... [--runs 10,3,2]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import Proc, RssSampler, Table, exit_cleanly_on_sigterm, log  # noqa: E402
from publish import (  # noqa: E402
    Run,
    Server,
    check_listed,
    client_env,
    mechanisms_used,
    pallet_cmd,
    run_client,
    sha256_of,
    with_local_pallet,
    with_s3_pallet,
)
from upload import build_wheel, mb  # noqa: E402

from pallet.config import parse_size  # noqa: E402

V2 = "application/vnd.pypi.upload.v2+json"
META = {"meta": {"api-version": "2.0"}}
PRESIGNED = "vnd-pallet-presigned-put"
MECHANISMS = {
    "presigned-put": PRESIGNED,
    "s3multipart": "vnd-pallet-s3multipart-presigned",
    "http-post-bytes": "http-post-bytes",
}
LIMIT_PUT, LIMIT_BOTO3 = "sha256 + PUT", "sha256 + boto3"
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
CHUNK = 2**20
STEPS = ["sha256 (client)", "create session", "create file", "PUT", "complete", "publish"]


# --- what a run costs -----------------------------------------------------------------------


def cpu_ms(proc: Proc | None) -> float:
    """User + system CPU of ``proc`` and its children so far (ms, at clock-tick resolution)."""
    if proc is None:
        return 0.0
    total = 0
    for pid in proc.pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total * TICK_MS


@contextlib.contextmanager
def costs(server: Server) -> Iterator[dict[str, float]]:
    """Pallet's and the store's CPU over the block, and Pallet's peak RSS."""
    out: dict[str, float] = {}
    before, store_before = cpu_ms(server.proc), cpu_ms(server.store)
    with RssSampler(server.proc) as rss:
        yield out
    out["cpu"] = cpu_ms(server.proc) - before
    out["store_cpu"] = cpu_ms(server.store) - store_before
    out["rss_kb"] = rss.peak


# --- the limits (run as their own processes) ------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def limit_put(url: str, path: Path, headers: dict[str, str]) -> None:
    _sha256(path)

    def body() -> Iterator[bytes]:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    r = httpx.put(url, content=body(), headers=headers, timeout=1800, trust_env=False)
    if not r.is_success:
        raise SystemExit(f"PUT answered {r.status_code}: {r.text[:500]}")


def limit_boto3(endpoint: str, bucket: str, key: str, path: Path) -> None:
    import boto3

    _sha256(path)
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").upload_file(
        str(path), bucket, key
    )


def run_limit(args: list[str], env: dict[str, str], workdir: Path, label: str) -> Run:
    run = run_client([sys.executable, __file__, "--limit", *args], env, workdir, label)
    if run.returncode:
        raise RuntimeError(f"{label}: exit {run.returncode}: {run.stderr[-1500:]}")
    return run


# --- Upload 2.0 by hand (the limits' URLs, and the timeline) ----------------------------------


class Flow:
    """One publishing session of one file with the pre-signed PUT, step by step."""

    def __init__(self, server: Server, wheel: Path) -> None:
        self.server, self.wheel = server, wheel
        headers = {"Authorization": f"Bearer {server.token}", "Content-Type": V2, "Accept": V2}
        self.http = httpx.Client(headers=headers, timeout=1800, trust_env=False)
        self.session: dict = {}
        self.file: dict = {}

    def open(self) -> None:
        name, version = self.wheel.name.split("-")[:2]
        body = {**META, "name": name, "version": version}
        r = self.http.post(f"{self.server.base}/upload/2.0/", content=json.dumps(body))
        r.raise_for_status()
        self.session = r.json()

    def create_file(self) -> dict:
        body = {
            **META,
            "filename": self.wheel.name,
            "size": self.wheel.stat().st_size,
            "hashes": {"sha256": sha256_of(self.wheel)},
            "mechanism": PRESIGNED,
        }
        r = self.http.post(self.session["links"]["upload"], content=json.dumps(body))
        if not r.is_success:
            raise RuntimeError(f"create file: {r.status_code} {r.text[:500]}")
        self.file = r.json()
        return self.file["mechanism"]

    def put(self) -> None:
        m = self.file["mechanism"]
        limit_put(m["url"], self.wheel, m["headers"])

    def complete(self) -> None:
        r = self.http.post(self.file["links"]["complete"], content=json.dumps(META))
        r.raise_for_status()
        if r.status_code == 201:
            return  # verified in the request; 202 is still processing
        deadline = time.monotonic() + 1800
        while self.http.get(self.file["links"]["file-upload-session"]).json()["status"] != (
            "completed"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the file never completed")
            time.sleep(0.02)

    def publish(self) -> None:
        self.http.post(
            self.session["links"]["publish"], content=json.dumps(META)
        ).raise_for_status()

    def cancel(self) -> None:
        self.http.delete(self.session["links"]["session"])

    def close(self) -> None:
        self.http.close()


def timeline(server: Server, wheel: Path) -> dict[str, tuple[float, float]]:
    """(wall ms, Pallet CPU ms) of each step of one pre-signed upload."""
    flow = Flow(server, wheel)
    steps: list[Callable[[], object]] = [
        lambda: _sha256(wheel),
        flow.open,
        flow.create_file,
        flow.put,
        flow.complete,
        flow.publish,
    ]
    out = {}
    try:
        for name, step in zip(STEPS, steps, strict=True):
            cpu = cpu_ms(server.proc)
            started = time.perf_counter()
            step()
            out[name] = ((time.perf_counter() - started) * 1000, cpu_ms(server.proc) - cpu)
    finally:
        flow.close()
    check_listed(server.base, wheel.name.split("-")[0], [wheel])
    return out


# --- one backend ------------------------------------------------------------------------------


class Results:
    """Per (size, column): run times, Pallet CPU, store CPU, peak RSS of Pallet and client."""

    def __init__(self) -> None:
        self.runs: dict[tuple[int, str], list[dict[str, float]]] = {}
        self.steps: dict[int, list[dict[str, tuple[float, float]]]] = {}

    def add(self, size: int, column: str, **values: float) -> None:
        self.runs.setdefault((size, column), []).append(values)

    def beyond(self, size: int, column: str, limit: str) -> float | None:
        """Mean Pallet CPU per file over what it spent while the limit ran: on S3 that was
        its idle work alone, on the local backend the store's own work (Pallet is the store)."""
        mine, base = self.mean(size, column, "cpu"), self.mean(size, limit, "cpu")
        return None if mine is None or base is None else mine - base

    def median(self, size: int, column: str, key: str) -> float | None:
        values = [r[key] for r in self.runs.get((size, column), [])]
        return statistics.median(values) if values else None

    def mean(self, size: int, column: str, key: str) -> float | None:
        values = [r[key] for r in self.runs.get((size, column), [])]
        return statistics.fmean(values) if values else None

    def peak(self, column: str, key: str) -> float | None:
        values = [r[key] for (_, c), rs in self.runs.items() if c == column for r in rs]
        return max(values) if values else None


def measure_backend(
    server: Server,
    bucket: str,
    sizes: list[tuple[int, int]],
    limits: list[str],
    workdir: Path,
    env: dict[str, str],
    results: Results,
) -> None:
    label = "s3" if server.s3 else "local"
    limit_env = {**env, **(server.s3.env() if server.s3 else {})}
    for size, runs in sizes:
        for i in range(runs):
            for column in [*limits, *MECHANISMS]:
                slug = re.sub("[^a-z0-9]+", "_", column.lower())
                project = f"benchps_{label}_{size}_{i}_{slug}"
                wheel = build_wheel(workdir, project, size)
                sha256_of(wheel)
                try:
                    one_run(
                        server, bucket, column, wheel, project, size, workdir, limit_env, results
                    )
                except Exception as exc:  # noqa: BLE001 - report it and go on with the rest
                    log(f"{label}/{column}/{size}: {exc}")
                finally:
                    wheel.unlink(missing_ok=True)
        project = f"benchps_{label}_{size}_timeline".replace("-", "_")
        for i in range(runs):
            wheel = build_wheel(workdir, f"{project}{i}", size)
            sha256_of(wheel)
            try:
                results.steps.setdefault(size, []).append(timeline(server, wheel))
            except Exception as exc:  # noqa: BLE001
                log(f"{label}/timeline/{size}: {exc}")
            finally:
                wheel.unlink(missing_ok=True)
        log(f"{label}: {size:,} bytes done")


def one_run(
    server: Server,
    bucket: str,
    column: str,
    wheel: Path,
    project: str,
    size: int,
    workdir: Path,
    env: dict[str, str],
    results: Results,
) -> None:
    if column == LIMIT_PUT:
        flow = Flow(server, wheel)
        try:
            flow.open()
            m = flow.create_file()
            args = ["put", m["url"], str(wheel), json.dumps(m["headers"])]
            with costs(server) as cost:
                run = run_limit(args, env, workdir, project)
            flow.cancel()
        finally:
            flow.close()
    elif column == LIMIT_BOTO3:
        args = ["boto3", server.s3.endpoint, bucket, f"bench/{project}", str(wheel)]
        with costs(server) as cost:
            run = run_limit(args, env, workdir, project)
    else:
        extra = ["--quiet", "--mechanism", MECHANISMS[column]]
        cmd = [*pallet_cmd(server.base, server.token, *extra), str(wheel)]
        with costs(server) as cost:
            run = run_client(cmd, env, workdir, project)
        if run.returncode:
            raise RuntimeError(f"exit {run.returncode}: {run.stderr[-1500:]}")
        check_listed(server.base, project, [wheel])
        if mechanisms_used(run) != MECHANISMS[column].replace("vnd-pallet-", ""):
            raise RuntimeError(f"{column} was not the mechanism used: {mechanisms_used(run)}")
    results.add(
        size,
        column,
        seconds=run.seconds,
        cpu=cost["cpu"],
        store_cpu=cost["store_cpu"],
        rss_kb=cost["rss_kb"],
        client_kb=run.maxrss_kb,
    )


# --- tables ---------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _human(size: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} B"


def tables(
    backend: str, results: Results, sizes: list[tuple[int, int]], limits: list[str]
) -> list[Table]:
    columns = [*limits, *MECHANISMS]
    main = Table(f"Pre-signed path, blobs {backend}: Pallet against the store's limits", columns)
    on_s3 = LIMIT_BOTO3 in limits
    for size, runs in sizes:
        mbps = {}
        for c in columns:
            seconds = results.median(size, c, "seconds")
            if seconds is not None:
                mbps[c] = size / seconds / 1e6
        main.add(
            f"{_human(size)}: MB/s, median of {runs}", {c: f"{v:,.0f}" for c, v in mbps.items()}
        )
        ratios = {}
        for c in MECHANISMS:
            base = LIMIT_BOTO3 if c == "s3multipart" and on_s3 else LIMIT_PUT
            if c in mbps and base in mbps:
                ratios[c] = f"{mbps[c] / mbps[base]:.2f} of {base}"
        main.add(f"{_human(size)}: ratio to the limit", ratios)
        main.add(
            f"{_human(size)}: Pallet CPU per file (ms)",
            {c: _fmt(results.mean(size, c, "cpu"), ".0f") for c in columns},
        )
        main.add(
            f"{_human(size)}: Pallet CPU per file beyond the {LIMIT_PUT} run's (ms)",
            {c: _fmt(results.beyond(size, c, LIMIT_PUT), ".0f") for c in MECHANISMS},
        )
        if on_s3:
            main.add(
                f"{_human(size)}: store CPU per file (ms)",
                {c: _fmt(results.mean(size, c, "store_cpu"), ".0f") for c in columns},
            )
    for metric, key in (
        ("Pallet peak RSS, all processes", "rss_kb"),
        ("client peak RSS", "client_kb"),
    ):
        peaks = {c: results.peak(c, key) for c in columns}
        main.add(f"{metric} (MiB)", {c: mb(int(v)) for c, v in peaks.items() if v is not None})
    main.notes += [
        "Every column is a process timed from its start to its exit; Pallet's runs end with the",
        "file published and listed. Pallet CPU: all its processes, in clock ticks of "
        f"{TICK_MS:.0f} ms, mean per file.",
        f"Beyond the {LIMIT_PUT} run's: what Pallet spent while that limit ran is taken out. On S3",
        "that is its idle work (timers, housekeeping: the limit asks nothing of it); on local disk",
        "it is the store's own work, since Pallet's signed endpoint is the store there.",
        "Ratios: presigned-put and http-post-bytes over sha256 + PUT; s3multipart over "
        "sha256 + boto3 where measured.",
    ]
    steps = Table(
        f"Timeline of one pre-signed upload, blobs {backend}: wall ms / Pallet CPU ms (mean)",
        [_human(size) for size, _ in sizes],
    )
    for step in STEPS:
        values = {}
        for size, _ in sizes:
            seen = [t[step] for t in results.steps.get(size, []) if step in t]
            if seen:
                wall = statistics.fmean(w for w, _ in seen)
                cpu = statistics.fmean(c for _, c in seen)
                values[_human(size)] = f"{wall:,.0f} / {cpu:.0f}"
        steps.add(step, values)
    return [main, steps]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1M,100M,1G", help="wheel payloads (1M,100M,1G)")
    parser.add_argument("--runs", default="10,3,2", help="runs per size, in order (10,3,2)")
    parser.add_argument("--backend", action="append", choices=["s3", "local"])
    parser.add_argument("--limit", nargs="+", help=argparse.SUPPRESS)  # a limit's own process
    args = parser.parse_args()
    if args.limit:
        kind, *rest = args.limit
        if kind == "put":
            limit_put(rest[0], Path(rest[1]), json.loads(rest[2]))
        else:
            limit_boto3(rest[0], rest[1], rest[2], Path(rest[3]))
        return 0
    exit_cleanly_on_sigterm()
    given = [parse_size(s) for s in args.sizes.split(",")]
    counts = [int(n) for n in args.runs.split(",")]
    sizes = [(size, counts[min(i, len(counts) - 1)]) for i, size in enumerate(given)]
    backends = args.backend or ["s3", "local"]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    log(f"load average at start: {load} ({os.cpu_count()} CPUs)")
    workdir = Path(tempfile.mkdtemp(prefix="pallet-presigned-bench-"))
    env = client_env(workdir)
    out: list[Table] = []
    largest = max(given)
    try:
        for backend in backends:
            results = Results()
            limits = [LIMIT_PUT, LIMIT_BOTO3] if backend == "s3" else [LIMIT_PUT]

            def body(
                server: Server, results: Results = results, limits: list[str] = limits
            ) -> None:
                bucket = server.s3.new_bucket() if server.s3 is not None else ""
                measure_backend(server, bucket, sizes, limits, workdir, env, results)

            start = with_s3_pallet if backend == "s3" else with_local_pallet
            try:
                start(workdir, largest, env, body)
            except Exception as exc:  # noqa: BLE001 - keep what the other backend measured
                log(f"{backend} server failed: {exc!r}")
            where = "in SeaweedFS (S3)" if backend == "s3" else "on local disk"
            out += tables(where, results, sizes, limits)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for table in out:
        table.notes.append(f"pallet serve: 2 uvicorn workers, SQLite. Load at start: {load}.")
        table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
