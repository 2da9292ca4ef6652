"""Publish benchmark: the client side of uploading, every client side by side in one run.

- **one large wheel** (``--size``, 1G): ``pallet publish`` with each Upload 2.0 mechanism forced
  (``http-post-bytes``, ``vnd-pallet-presigned-put``, ``vnd-pallet-s3multipart-presigned``) and
  with ``--protocol legacy``, ``twine upload`` and ``uv publish`` (both to ``/legacy/``), against
  a Pallet storing blobs on its local disk. MB/s is the file's size over the wall time.
- **one release of many small wheels** (``--small-count``, 30, of about 100 kB each, one
  platform tag each): ``pallet publish`` at ``--jobs 3`` (its default) and ``--jobs 8`` with the
  default mechanism, ``twine upload`` and ``uv publish``. Files/s is the count over the wall time.
- **many one-file releases** (``--releases``, 200, wheels of about 10 kB, one project each):
  ``pallet publish --jobs 8`` with Upload 2.0 and with ``--protocol legacy``, ``uv publish``
  and ``twine upload``, each into a freshly started Pallet; the last row is each client's time
  over uv's.
- ``--s3``: the large-wheel Upload 2.0 mechanisms again, against a Pallet whose blobs live in a
  real SeaweedFS S3 gateway (started as ``tests/seaweedfs.py`` does, credentials enforced). With
  the pre-signed mechanisms the bytes go straight to the store, so Pallet's memory must not move.

Wall time runs from the client's process start to its exit: interpreter start-up, reading the
metadata, hashing, the transfer, and completing and publishing the release. Every wheel is built
(and its sha256 computed) before its clock starts, with a project name of its own, so no run
sees another's files. A run counts only if the client exits 0 and the project's PEP 691 JSON page
then lists every file with its true sha256. The client's peak RSS is the kernel's high-water mark
for the process (VmHWM, read from /proc every 20 ms); it must stay flat, far below the file's
size. The server's (and SeaweedFS's) peak RSS is sampled every 50 ms during the run.

Clients run with the machine's ``PIP_*``/``UV_*``/``TWINE_*`` settings removed (see
``tests/e2e/support.py::client_env``) and the token on the command line (``--token``, or
``-u __token__ -p TOKEN``). Everything stays on 127.0.0.1; progress goes to stderr, the tables
to stdout.

    python benchmarks/publish.py [--size 1G] [--small-count 30] [--only NAME]... [--s3]

``--only`` takes a client (``http-post-bytes``, ``presigned-put``, ``s3multipart``,
``pallet-legacy``, ``twine``, ``uv``, ``pallet-j3``, ``pallet-j8``) or a scenario (``large``,
``small``, ``releases``, ``s3``) and may be repeated.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from common import (  # noqa: E402
    BIN,
    HOST,
    Proc,
    RssSampler,
    Table,
    exit_cleanly_on_sigterm,
    free_port,
    log,
    pallet_token,
    start,
    status_kb,
)
from upload import build_wheel, mb  # noqa: E402

from pallet.config import parse_size  # noqa: E402

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
SMALL_SIZE = 100_000  # payload bytes of each wheel of the many-small-files release
CLIENT_TIMEOUT = 1800  # seconds any one client run may take before it is killed
MECHANISMS = {
    "http-post-bytes": "http-post-bytes",
    "presigned-put": "vnd-pallet-presigned-put",
    "s3multipart": "vnd-pallet-s3multipart-presigned",
}
LARGE = [*MECHANISMS, "pallet-legacy", "twine", "uv"]
SMALL = ["pallet-j3", "pallet-j8", "twine", "uv"]
RELEASES = ["pallet-2.0-j8", "pallet-legacy-j8", "uv", "twine"]
RELEASE_FILE_SIZE = 10_000  # payload bytes of each one-file release's wheel
SCENARIOS = ["large", "small", "releases", "s3"]

M_TIME = "wall time, process start→exit (s)"
M_MBPS = "throughput (MB/s)"
M_FPS = "files/s"
M_CLIENT = "client peak RSS (MiB)"
M_IDLE = "server RSS before the run, all processes (MiB)"
M_SERVER = "server peak RSS, all processes (MiB)"
M_SINGLE = "server peak RSS, largest process (MiB)"
M_WEED_IDLE = "SeaweedFS RSS before the run (MiB)"
M_WEED = "SeaweedFS peak RSS (MiB)"
M_MECH = "mechanism used"
M_VS_UV = "time / uv publish's time"


# --- clients --------------------------------------------------------------------------------


def client_env(workdir: Path) -> dict[str, str]:
    """The end-to-end tests' scrubbed client environment (pip, uv and twine see only what the
    command line says), also without ``PALLET_*`` so the index under test is the only one."""
    sys.path.insert(0, str(ROOT))
    from tests.e2e.support import client_env as scrubbed

    return {k: v for k, v in scrubbed(workdir).items() if not k.startswith("PALLET_")}


def pallet_cmd(base: str, token: str, *extra: str) -> list[str]:
    return [str(BIN / "pallet"), "publish", "--url", base, "--token", token, "--json", *extra]


def twine_cmd(base: str, token: str, pypirc: Path) -> list[str]:
    cmd = [str(BIN / "twine"), "upload", "--repository-url", f"{base}/legacy/"]
    cmd += ["-u", "__token__", "-p", token, "--config-file", str(pypirc)]
    return [*cmd, "--non-interactive", "--disable-progress-bar"]


def uv_cmd(base: str, token: str) -> list[str]:
    cmd = [str(BIN / "uv"), "publish", "--publish-url", f"{base}/legacy/"]
    cmd += ["-u", "__token__", "-p", token, "--trusted-publishing", "never"]
    return [*cmd, "--keyring-provider", "disabled", "--no-config", "--no-progress"]


@dataclass
class Run:
    seconds: float
    maxrss_kb: int
    returncode: int
    stdout: str
    stderr: str


def _hwm_kb(pid: int) -> int:
    """VmHWM: the peak resident memory of ``pid`` since its exec, in kB (0 once it is gone)."""
    return status_kb(pid, "VmHWM")


def run_client(cmd: list[str], env: dict[str, str], workdir: Path, label: str) -> Run:
    """Run one client to its exit. A thread blocks in ``wait4`` so the clock stops the moment
    the process is reaped; another reads its VmHWM every 20 ms while it lives (the kernel's
    high-water mark, so only growth in its last 20 ms could be missed). ``ru_maxrss`` from
    ``wait4`` is no use here: it keeps the RSS of the forking parent (this script) from before
    the exec, so every client would look at least as large as the benchmark itself."""
    out_path, err_path = workdir / f"{label}.out", workdir / f"{label}.err"
    reaped: dict[str, object] = {}
    done = threading.Event()
    peak = [0]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        # Popen returns once the exec succeeded, so every VmHWM read below is the client's own.
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=workdir
        )

        def reap() -> None:
            _, status, _ = os.wait4(process.pid, 0)
            reaped.update(end=time.perf_counter(), status=status)
            done.set()

        def sample() -> None:
            while not done.is_set():
                hwm = _hwm_kb(process.pid)
                if not done.is_set():  # after the reap the pid may name another process
                    peak[0] = max(peak[0], hwm)
                done.wait(0.02)

        waiter = threading.Thread(target=reap, daemon=True)
        sampler = threading.Thread(target=sample, daemon=True)
        waiter.start()
        sampler.start()
        try:
            waiter.join(CLIENT_TIMEOUT)
            if waiter.is_alive():
                log(f"{label}: no exit after {CLIENT_TIMEOUT}s, killing pid {process.pid}")
        finally:  # timed out, Ctrl-C or SIGTERM: kill the client (by its pid) and collect it
            if waiter.is_alive():
                os.kill(process.pid, signal.SIGKILL)
                waiter.join(60)
            done.set()
            sampler.join(5)
    if "status" not in reaped:
        raise RuntimeError(f"{label}: pid {process.pid} could not be reaped")
    process.returncode = os.waitstatus_to_exitcode(reaped["status"])  # Popen must not wait again
    return Run(
        seconds=reaped["end"] - started,
        maxrss_kb=peak[0],
        returncode=process.returncode,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


_DIGESTS: dict[tuple[Path, int, int, int], str] = {}


def sha256_of(path: Path) -> str:
    """Computed once per file, outside every timed section. Keyed by inode and mtime as well as
    the path: a wheel rebuilt under the same name (each server's warm-up) is another file."""
    st = path.stat()
    key = (path, st.st_ino, st.st_mtime_ns, st.st_size)
    if key not in _DIGESTS:
        sha = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(2**24):
                sha.update(chunk)
        _DIGESTS[key] = sha.hexdigest()
    return _DIGESTS[key]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check_listed(base: str, project: str, wheels: list[Path]) -> None:
    """The run counts only if the PEP 691 page lists every file with its true sha256."""
    url = f"{base}/simple/{normalize(project)}/"
    r = httpx.get(url, headers={"Accept": SIMPLE_JSON}, timeout=60, trust_env=False)
    if r.status_code != 200:
        raise RuntimeError(f"{url} answered {r.status_code} after the upload")
    listed = {f["filename"]: f["hashes"].get("sha256") for f in r.json()["files"]}
    for wheel in wheels:
        if listed.get(wheel.name) != sha256_of(wheel):
            raise RuntimeError(f"{url} lists {wheel.name} as {listed.get(wheel.name)!r}")


def mechanisms_used(run: Run) -> str:
    """What ``pallet publish --json`` says it used (it must be what was forced)."""
    summary = json.loads(run.stdout)
    used = {f["mechanism"] for r in summary["releases"] for f in r["files"]}
    return ",".join(sorted(used)).replace("vnd-pallet-", "")


# --- wheels ---------------------------------------------------------------------------------


def small_wheel(directory: Path, name: str, tag: str, size: int) -> Path:
    """A valid binary wheel for ``tag`` (WHEEL names it, RECORD has true hashes) whose payload
    is ``size`` random bytes stored uncompressed: many of these make one release."""

    def record(path: str, data: bytes) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        return f"{path},sha256={digest},{len(data)}"

    info = f"{name}-1.0.dist-info"
    members = {
        f"{name}/__init__.py": b"",
        f"{name}/payload.bin": os.urandom(size),
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nSummary: publish benchmark\n"
        ).encode(),
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: pallet-bench\nRoot-Is-Purelib: false\nTag: {tag}\n"
        ).encode(),
    }
    path = directory / f"{name}-1.0-{tag}.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
        lines = [record(m, d) for m, d in members.items()]
        zf.writestr(f"{info}/RECORD", "\n".join([*lines, f"{info}/RECORD,,"]) + "\n")
    return path


def small_release(directory: Path, name: str, count: int) -> list[Path]:
    """``count`` wheels of one name and version, told apart by their manylinux glibc tag."""
    directory.mkdir(parents=True)
    tags = [f"cp312-cp312-manylinux_2_{17 + i}_x86_64" for i in range(count)]
    wheels = [small_wheel(directory, name, tag, SMALL_SIZE) for tag in tags]
    for wheel in wheels:
        sha256_of(wheel)
    return wheels


# --- servers --------------------------------------------------------------------------------


@dataclass
class Server:
    proc: Proc
    base: str
    token: str
    store: Proc | None = None  # SeaweedFS, when the blobs live there
    s3: Any = None  # its handle (tests/seaweedfs.py), for limits measured beside Pallet


def start_pallet(
    workdir: Path, data: Path, size: int, storage_url: str | None, env: dict[str, str] | None
) -> tuple[Proc, str]:
    """As ``common.start_pallet`` (2 uvicorn workers, no access log), plus a storage URL and a
    file-size cap that admits the benchmark's wheel."""
    port = free_port()
    base = f"http://{HOST}:{port}"
    cmd = [str(BIN / "pallet"), "serve", "--host", HOST, "--port", str(port)]
    cmd += ["--data-dir", str(data), "--workers", "2", "--no-access-log"]
    cmd += ["--max-file-size", str(max(2 * 2**30, size + 2**26))]
    if storage_url:
        cmd += ["--storage-url", storage_url]
    return start("pallet", cmd, workdir, f"{base}/_/health", env=env), base


def warm_up(server: Server, workdir: Path, env: dict[str, str], label: str) -> None:
    """One small release through Upload 2.0 and one through legacy, untimed, so no measured run
    pays a worker's first request."""
    for i, extra in enumerate([(), ("--protocol", "legacy")]):
        project = f"benchpub_warmup_{label}{i}"
        folder = workdir / project
        try:
            wheels = small_release(folder, project, 4)
            cmd = pallet_cmd(server.base, server.token, *extra, *map(str, wheels))
            run = run_client(cmd, env, workdir, project)
            if run.returncode:
                raise RuntimeError(f"warm-up publish failed: {run.stderr[-2000:]}")
            check_listed(server.base, project, wheels)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


# --- scenarios ------------------------------------------------------------------------------


def measure(
    server: Server,
    label: str,
    cmd: list[str],
    wheels: list[Path],
    project: str,
    env: dict[str, str],
    workdir: Path,
) -> tuple[Run, dict[str, str]]:
    """One timed client run with the server (and store) sampled; raises unless it is listed."""
    idle, _ = server.proc.rss_kb()
    store_idle = server.store.rss_kb()[0] if server.store else 0
    with contextlib.ExitStack() as stack:
        rss = stack.enter_context(RssSampler(server.proc))
        store = stack.enter_context(RssSampler(server.store)) if server.store else None
        run = run_client(cmd, env, workdir, label)
    if run.returncode:
        tail = (run.stderr.strip() or run.stdout.strip())[-1500:]
        raise RuntimeError(f"exit {run.returncode}: {tail}")
    check_listed(server.base, project, wheels)
    out = {M_CLIENT: mb(run.maxrss_kb), M_IDLE: mb(idle), M_SERVER: mb(rss.peak)}
    out[M_SINGLE] = mb(rss.peak_single)
    if store:
        out[M_WEED_IDLE], out[M_WEED] = mb(store_idle), mb(store.peak)
    return run, out


def large_command(name: str, server: Server, wheel: Path, pypirc: Path) -> list[str]:
    if name in MECHANISMS:
        extra = ["--quiet", "--mechanism", MECHANISMS[name]]
        return [*pallet_cmd(server.base, server.token, *extra), str(wheel)]
    if name == "pallet-legacy":
        return [
            *pallet_cmd(server.base, server.token, "--quiet", "--protocol", "legacy"),
            str(wheel),
        ]
    if name == "twine":
        return [*twine_cmd(server.base, server.token, pypirc), str(wheel)]
    return [*uv_cmd(server.base, server.token), str(wheel)]


def scenario_large(
    server: Server, names: list[str], size: int, workdir: Path, env: dict[str, str], tag: str
) -> dict[str, dict[str, str]]:
    results: dict[str, dict[str, str]] = {}
    pypirc = workdir / "pypirc"
    pypirc.touch()
    for name in names:
        project = f"benchpub_{tag}_{name.replace('-', '_')}"
        built = time.monotonic()
        wheel = build_wheel(workdir, project, size)
        sha256_of(wheel)
        log(
            f"{tag}/{name}: built {wheel.stat().st_size:,} bytes in {time.monotonic() - built:.1f}s"
        )
        try:
            cmd = large_command(name, server, wheel, pypirc)
            run, out = measure(server, f"{tag}-{name}", cmd, [wheel], project, env, workdir)
            out[M_TIME] = f"{run.seconds:.1f}"
            out[M_MBPS] = f"{wheel.stat().st_size / run.seconds / 1e6:,.0f}"
            pallet = name in MECHANISMS or name.startswith("pallet")
            out[M_MECH] = mechanisms_used(run) if pallet else "legacy"
            log(f"{tag}/{name}: {out[M_TIME]}s, {out[M_MBPS]} MB/s, client {out[M_CLIENT]} MiB")
            results[name] = out
        except Exception as exc:  # noqa: BLE001 - report and carry on with the others
            log(f"{tag}/{name} failed: {exc}")
            results[name] = {}
        finally:
            wheel.unlink(missing_ok=True)
    return results


def scenario_small(
    server: Server, names: list[str], count: int, workdir: Path, env: dict[str, str]
) -> dict[str, dict[str, str]]:
    results: dict[str, dict[str, str]] = {}
    pypirc = workdir / "pypirc"
    pypirc.touch()
    for name in names:
        project = f"benchpub_many_{name.replace('-', '_')}"
        folder = workdir / project
        wheels = small_release(folder, project, count)
        files = [str(w) for w in wheels]
        if name.startswith("pallet-j"):
            jobs = name.removeprefix("pallet-j")
            cmd = [*pallet_cmd(server.base, server.token, "--quiet", "--jobs", jobs), *files]
        elif name == "twine":
            cmd = [*twine_cmd(server.base, server.token, pypirc), *files]
        else:
            cmd = [*uv_cmd(server.base, server.token), *files]
        try:
            run, out = measure(server, f"small-{name}", cmd, wheels, project, env, workdir)
            total = sum(w.stat().st_size for w in wheels)
            out[M_TIME] = f"{run.seconds:.2f}"
            out[M_FPS] = f"{count / run.seconds:.1f}"
            out[M_MBPS] = f"{total / run.seconds / 1e6:.1f}"
            out[M_MECH] = mechanisms_used(run) if name.startswith("pallet") else "legacy"
            log(f"small/{name}: {count} files in {out[M_TIME]}s ({out[M_FPS]} files/s)")
            results[name] = out
        except Exception as exc:  # noqa: BLE001 - report and carry on with the others
            log(f"small/{name} failed: {exc}")
            results[name] = {}
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return results


def one_file_releases(directory: Path, count: int) -> list[tuple[str, Path]]:
    """``count`` projects of one small wheel each: a CI pipeline publishing many packages."""
    directory.mkdir(parents=True)
    made = []
    for i in range(count):
        project = f"benchrel_{i:04d}"
        wheel = small_wheel(directory, project, "py3-none-any", RELEASE_FILE_SIZE)
        sha256_of(wheel)
        made.append((project, wheel))
    return made


def releases_command(name: str, server: Server, files: list[str], pypirc: Path) -> list[str]:
    if name == "pallet-2.0-j8":
        return [*pallet_cmd(server.base, server.token, "--quiet", "--jobs", "8"), *files]
    if name == "pallet-legacy-j8":
        extra = ("--quiet", "--protocol", "legacy", "--jobs", "8")
        return [*pallet_cmd(server.base, server.token, *extra), *files]
    if name == "twine":
        return [*twine_cmd(server.base, server.token, pypirc), *files]
    return [*uv_cmd(server.base, server.token), *files]


def scenario_releases(
    names: list[str], count: int, workdir: Path, env: dict[str, str]
) -> dict[str, dict[str, str]]:
    """Every client into a Pallet of its own, started fresh (SQLite, local blobs, 2 workers),
    so none inherits another's database; the same wheels for all."""
    made = one_file_releases(workdir / "releases", count)
    files = [str(w) for _, w in made]
    pypirc = workdir / "pypirc"
    pypirc.touch()
    results: dict[str, dict[str, str]] = {}
    for name in names:
        data = workdir / f"pallet-releases-{name}"
        proc, base = start_pallet(workdir, data, RELEASE_FILE_SIZE, None, None)
        try:
            server = Server(proc, base, pallet_token(data))
            warm_up(server, workdir, env, f"rel_{name.replace('-', '_').replace('.', '')}")
            project, wheel = made[0]
            cmd = releases_command(name, server, files, pypirc)
            run, out = measure(server, f"releases-{name}", cmd, [wheel], project, env, workdir)
            for project, wheel in made[1:]:
                check_listed(server.base, project, [wheel])
            out[M_TIME] = f"{run.seconds:.2f}"
            out[M_FPS] = f"{count / run.seconds:.0f}"
            out[M_MECH] = mechanisms_used(run) if name.startswith("pallet-2") else "legacy"
            log(f"releases/{name}: {count} releases in {out[M_TIME]}s ({out[M_FPS]} files/s)")
            results[name] = out
        except Exception as exc:  # noqa: BLE001 - report and carry on with the others
            log(f"releases/{name} failed: {exc}")
            results[name] = {}
        finally:
            proc.stop()
            shutil.rmtree(data, ignore_errors=True)
    uv = results.get("uv", {}).get(M_TIME)
    for out in results.values():
        if uv and out.get(M_TIME):
            out[M_VS_UV] = f"{float(out[M_TIME]) / float(uv):.2f}"
    return results


def with_local_pallet(
    workdir: Path, size: int, env: dict[str, str], body: Callable[[Server], None]
) -> None:
    data = workdir / "pallet-local"
    proc, base = start_pallet(workdir, data, size, None, None)
    try:
        server = Server(proc, base, pallet_token(data))
        warm_up(server, workdir, env, "local")
        body(server)
    finally:
        proc.stop()
        shutil.rmtree(data, ignore_errors=True)


def with_s3_pallet(
    workdir: Path, size: int, env: dict[str, str], body: Callable[[Server], None]
) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.seaweedfs import start_seaweedfs

    weed = start_seaweedfs(workdir / "seaweedfs")
    try:
        bucket = weed.new_bucket()
        server_env = {k: v for k, v in os.environ.items() if not k.startswith(("PALLET_", "AWS_"))}
        server_env.update(
            weed.env(), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost"
        )
        data = workdir / "pallet-s3"
        storage = f"s3://{bucket}?endpoint_url={weed.endpoint}"
        proc, base = start_pallet(workdir, data, size, storage, server_env)
        try:
            store = Proc("seaweedfs", weed.process, weed.log)  # sampled only; weed.stop() ends it
            server = Server(proc, base, pallet_token(data), store, weed)
            warm_up(server, workdir, env, "s3")
            body(server)
        finally:
            proc.stop()
            shutil.rmtree(data, ignore_errors=True)
    finally:
        weed.stop()


# --- output ---------------------------------------------------------------------------------


def table(title: str, results: dict[str, dict[str, str]], metrics: list[str]) -> Table:
    t = Table(title, list(results))
    for metric in metrics:
        t.add(metric, {k: v.get(metric, "-") for k, v in results.items()})
    return t


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1G", help="large wheel payload, binary units (1G)")
    parser.add_argument(
        "--small-count", type=int, default=30, help="wheels in the many-small-files release (30)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted({*LARGE, *SMALL, *RELEASES, *SCENARIOS}),
        help="run only this client or scenario (repeatable)",
    )
    parser.add_argument(
        "--releases", type=int, default=200, help="one-file releases in scenario C (200)"
    )
    parser.add_argument("--s3", action="store_true", help="also scenario A against SeaweedFS")
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    size = parse_size(args.size)
    if not 1 <= args.small_count <= 200:
        parser.error("--small-count must be between 1 and 200")
    only = set(args.only or [])
    scenarios = [s for s in SCENARIOS if s != "s3" or args.s3]
    if only & set(SCENARIOS):
        scenarios = [s for s in scenarios if s in only]
    clients = only - set(SCENARIOS)

    def pick(names: list[str]) -> list[str]:
        return [n for n in names if not clients or n in clients]

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    log(f"load average at start: {load} ({os.cpu_count()} CPUs)")
    workdir = Path(tempfile.mkdtemp(prefix="pallet-publish-bench-"))
    env = client_env(workdir)
    large: dict[str, dict[str, str]] = {}
    small: dict[str, dict[str, str]] = {}
    on_s3: dict[str, dict[str, str]] = {}
    releases: dict[str, dict[str, str]] = {}

    def local(server: Server) -> None:
        if "large" in scenarios:
            large.update(scenario_large(server, pick(LARGE), size, workdir, env, "local"))
        if "small" in scenarios:
            small.update(scenario_small(server, pick(SMALL), args.small_count, workdir, env))

    def s3(server: Server) -> None:
        on_s3.update(scenario_large(server, pick(list(MECHANISMS)), size, workdir, env, "s3"))

    runs = []
    if ("large" in scenarios and pick(LARGE)) or ("small" in scenarios and pick(SMALL)):
        runs.append(("local", with_local_pallet, local))
    if "s3" in scenarios and pick(list(MECHANISMS)):
        runs.append(("s3", with_s3_pallet, s3))
    try:
        if "releases" in scenarios and pick(RELEASES):
            releases.update(scenario_releases(pick(RELEASES), args.releases, workdir, env))
        for label, server, body in runs:
            try:
                server(workdir, size, env, body)
            except Exception as exc:  # noqa: BLE001 - keep what the other server measured
                log(f"{label} server failed: {exc!r}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    gib = f"{size / 2**30:.2f} GiB"
    notes = [
        "pallet serve: 2 uvicorn workers, SQLite; clients run one at a time over 127.0.0.1.",
        f"load average at start: {load} on {os.cpu_count()} CPUs. '-' = failed (see stderr).",
    ]
    large_metrics = [M_TIME, M_MBPS, M_CLIENT, M_IDLE, M_SERVER, M_SINGLE, M_MECH]
    if large:
        t = table(
            f"A. Publish one {gib} wheel, blobs on local disk (MB/s: 10^6 B/s)",
            large,
            large_metrics,
        )
        t.notes += notes
        t.print()
    if small:
        t = table(
            f"B. Publish one release of {args.small_count} wheels of ~{SMALL_SIZE // 1000} kB",
            small,
            [M_TIME, M_FPS, M_MBPS, M_CLIENT, M_IDLE, M_SERVER, M_SINGLE, M_MECH],
        )
        t.notes += notes
        t.print()
    if releases:
        t = table(
            f"C. Publish {args.releases} one-file releases (wheels of ~{RELEASE_FILE_SIZE // 1000}"
            " kB), each client into a fresh Pallet",
            releases,
            [M_TIME, M_FPS, M_VS_UV, M_CLIENT, M_IDLE, M_SERVER, M_MECH],
        )
        t.notes += notes
        t.print()
    if on_s3:
        t = table(
            f"A'. Publish one {gib} wheel, blobs in SeaweedFS (S3)",
            on_s3,
            [*large_metrics, M_WEED_IDLE, M_WEED],
        )
        t.notes += notes
        t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
