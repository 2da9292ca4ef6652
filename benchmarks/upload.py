"""Upload benchmark: one large wheel end to end, MB/s and the server's peak memory.

- legacy form upload (``curl -F``, what twine sends) to Pallet, pypiserver and devpi-server;
- Pallet's Upload 2.0 ``http-post-bytes`` (create session, create file, POST bytes, complete,
  publish), timed from the first request until the file is published.

Memory is the VmRSS of the server process and all its children (uvicorn or gunicorn workers),
sampled every 50 ms during the upload: the peak of their sum and of the largest single process.
A server that buffers the body in memory shows up as a peak near the file's size.

    python benchmarks/upload.py [--size 1G] [--only pallet]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
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
)

from pallet.config import parse_size  # noqa: E402

V2 = "application/vnd.pypi.upload.v2+json"
BLOCK = 16 * 2**20

METRICS = [
    "legacy upload, curl -F (MB/s)",
    "legacy upload time (s)",
    "RSS idle before upload, all processes (MiB)",
    "RSS peak during legacy, all processes (MiB)",
    "RSS peak during legacy, largest process (MiB)",
    "Upload 2.0 bytes POST (MB/s)",
    "Upload 2.0 open→published (MB/s)",
    "RSS peak during Upload 2.0, all processes (MiB)",
    "RSS peak during Upload 2.0, largest process (MiB)",
]


def _record_line(path: str, digest: bytes, size: int) -> str:
    return f"{path},sha256={base64.urlsafe_b64encode(digest).rstrip(b'=').decode()},{size}"


def build_wheel(directory: Path, name: str, size: int) -> Path:
    """A valid wheel (METADATA, WHEEL, RECORD with true hashes) whose payload is ``size`` bytes of
    random data stored uncompressed, so no server or client can shrink it on the way."""
    path = directory / f"{name}-1.0-py3-none-any.whl"
    block = memoryview(os.urandom(BLOCK))  # repeated: writing 1 GiB takes seconds, not minutes
    info = f"{name}-1.0.dist-info"
    small = {
        f"{name}/__init__.py": b"",
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nSummary: upload benchmark\n"
        ).encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: pallet-bench\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    payload = f"{name}/payload.bin"
    sha = hashlib.sha256()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        with zf.open(payload, "w", force_zip64=True) as f:
            left = size
            while left > 0:
                chunk = block[: min(left, BLOCK)]
                f.write(chunk)
                sha.update(chunk)
                left -= len(chunk)
        record = [_record_line(payload, sha.digest(), size)]
        for member, data in small.items():
            zf.writestr(member, data)
            record.append(_record_line(member, hashlib.sha256(data).digest(), len(data)))
        zf.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")
    return path


def curl_upload(url: str, wheel: Path, name: str, auth: str | None) -> float:
    """The legacy form upload as twine sends it; returns curl's total time in seconds."""
    cmd = [ensure_tool("curl"), "-sS", "--noproxy", "*", "-o", "/dev/null"]
    cmd += ["-w", "%{http_code} %{time_total}"]
    if auth:
        cmd += ["-u", auth]
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name,
        "version": "1.0",
        "filetype": "bdist_wheel",
        "pyversion": "py3",
        "sha256_digest": sha256_of(wheel),
    }
    for key, value in fields.items():
        cmd += ["-F", f"{key}={value}"]
    cmd += ["-F", f"content=@{wheel}", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    code, seconds = (done.stdout.split() + ["000", "0"])[:2]
    if done.returncode or not code.startswith("2"):
        raise RuntimeError(f"upload to {url} answered {code}: {done.stderr.strip()}")
    return float(seconds)


_DIGESTS: dict[Path, str] = {}


def sha256_of(path: Path) -> str:
    """Computed once per file and outside every timed section, as a client that built it would."""
    if path not in _DIGESTS:
        sha = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(BLOCK):
                sha.update(chunk)
        _DIGESTS[path] = sha.hexdigest()
    return _DIGESTS[path]


def check_listed(url: str, filename: str) -> None:
    """The upload counts only if the index now lists the file."""
    r = httpx.get(url, headers={"Accept": "text/html"}, timeout=60, trust_env=False)
    if r.status_code != 200 or filename not in r.text:
        raise RuntimeError(f"{url} does not list {filename} after the upload ({r.status_code})")


def mbps(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:,.0f}"


def mb(kb: int) -> str:
    return f"{kb / 1024:,.0f}"


def legacy(proc: Proc, url: str, wheel: Path, auth: str | None, listing: str) -> dict[str, str]:
    sha256_of(wheel)
    time.sleep(1)  # let the server settle after start-up before the idle sample
    idle, _ = proc.rss_kb()
    with RssSampler(proc) as rss:
        seconds = curl_upload(url, wheel, wheel.name.split("-")[0], auth)
    check_listed(listing, wheel.name)
    size = wheel.stat().st_size
    return {
        METRICS[0]: mbps(size, seconds),
        METRICS[1]: f"{seconds:.1f}",
        METRICS[2]: mb(idle),
        METRICS[3]: mb(rss.peak),
        METRICS[4]: mb(rss.peak_single),
    }


def run_pallet(workdir: Path, wheels: dict[str, Path]) -> dict[str, str]:
    data = workdir / "pallet"
    proc, base = start_pallet(workdir, data, workers=2)
    try:
        token = pallet_token(data)
        wheel = wheels["legacy"]
        out = legacy(
            proc,
            f"{base}/legacy/",
            wheel,
            f"__token__:{token}",
            f"{base}/simple/{wheel.name.split('-')[0]}/",
        )
        sha256_of(wheels["v2"])
        with RssSampler(proc) as rss:
            post_seconds, seconds = upload_v2(base, token, wheels["v2"])
        check_listed(f"{base}/simple/benchv2/", wheels["v2"].name)
        size = wheels["v2"].stat().st_size
        out[METRICS[5]] = mbps(size, post_seconds)
        out[METRICS[6]] = mbps(size, seconds)
        out[METRICS[7]] = mb(rss.peak)
        out[METRICS[8]] = mb(rss.peak_single)
        return out
    finally:
        proc.stop()
        shutil.rmtree(data, ignore_errors=True)


def upload_v2(base: str, token: str, wheel: Path) -> tuple[float, float]:
    """The whole Upload 2.0 flow: (seconds of the bytes POST, seconds from open to published)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": V2, "Accept": V2}
    meta = {"meta": {"api-version": "2.0"}}
    size = wheel.stat().st_size
    with httpx.Client(headers=headers, timeout=900, trust_env=False) as c:
        started = time.perf_counter()
        s = c.post(
            f"{base}/upload/2.0/", content=json.dumps({**meta, "name": "benchv2", "version": "1.0"})
        )
        s.raise_for_status()
        links = s.json()["links"]
        fs = c.post(
            links["upload"],
            content=json.dumps(
                {
                    **meta,
                    "filename": wheel.name,
                    "size": size,
                    "hashes": {"sha256": sha256_of(wheel)},
                    "mechanism": "http-post-bytes",
                }
            ),
        )
        fs.raise_for_status()
        body = fs.json()

        def stream():  # noqa: ANN202
            with wheel.open("rb") as f:
                while chunk := f.read(2**20):
                    yield chunk

        posted = time.perf_counter()
        c.post(
            body["mechanism"]["file_url"],
            content=stream(),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        ).raise_for_status()
        post_seconds = time.perf_counter() - posted
        c.post(body["links"]["complete"], content=json.dumps(meta)).raise_for_status()
        deadline = time.monotonic() + 900
        while c.get(body["links"]["file-upload-session"]).json()["status"] == "processing":
            if time.monotonic() > deadline:
                raise RuntimeError("file stayed processing for 900 s")
            time.sleep(0.05)
        c.post(links["publish"], content=json.dumps(meta)).raise_for_status()
        return post_seconds, time.perf_counter() - started


def run_pypiserver(workdir: Path, wheels: dict[str, Path]) -> dict[str, str]:
    packages = workdir / "pypiserver"
    packages.mkdir()
    proc, base = start_pypiserver(workdir, packages, workers=2)
    try:
        wheel = wheels["legacy"]
        return legacy(proc, f"{base}/", wheel, None, f"{base}/simple/benchlegacy/")
    finally:
        proc.stop()
        shutil.rmtree(packages, ignore_errors=True)


def run_devpi(workdir: Path, wheels: dict[str, Path]) -> dict[str, str]:
    proc, base = start_devpi(workdir)
    try:
        wheel = wheels["legacy"]
        return legacy(
            proc,
            f"{base}/bench/dev/",
            wheel,
            "bench:bench",
            f"{base}/bench/dev/+simple/benchlegacy/",
        )
    finally:
        proc.stop()
        shutil.rmtree(workdir / "devpi", ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1G", help="payload size, binary units: 200M, 1G (1G)")
    parser.add_argument("--only", choices=["pallet", "pypiserver", "devpi"])
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    ensure_tool("curl")
    size = parse_size(args.size)
    workdir = Path(tempfile.mkdtemp(prefix="pallet-upload-bench-"))
    results: dict[str, dict[str, str]] = {}
    actual = size
    try:
        started = time.monotonic()
        wheels = {"legacy": build_wheel(workdir, "benchlegacy", size)}
        if args.only in (None, "pallet"):  # Pallet never accepts one filename twice
            wheels["v2"] = build_wheel(workdir, "benchv2", size)
        actual = wheels["legacy"].stat().st_size
        log(
            f"built {len(wheels)} wheel(s) of {actual:,} bytes in {time.monotonic() - started:.1f}s"
        )
        runners = [
            ("pallet", run_pallet),
            ("pypiserver", run_pypiserver),
            ("devpi-server", run_devpi),
        ]
        for name, runner in runners:
            if args.only not in (None, name.removesuffix("-server")):
                continue
            log(f"{name}: uploading")
            try:
                results[name] = runner(workdir, wheels)
            except Exception as exc:  # noqa: BLE001 - report and carry on with the others
                log(f"{name} failed: {exc}")
                results[name] = {}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    table = Table(
        f"Upload of one {actual / 2**30:.2f} GiB wheel over 127.0.0.1 (MB/s: 10^6 bytes a second)",
        list(results),
    )
    table.notes += [
        "pallet: 2 uvicorn workers, SQLite, files on disk; pypiserver: gunicorn, 2 sync workers;",
        "devpi-server: one process. '-' = not measured or failed (error printed above).",
    ]
    for metric in METRICS:
        # Peers that answered but have no Upload 2.0 get "n/a"; "-" stays for failures.
        absent = {
            k: "n/a" if v and metric.startswith(("Upload 2.0", "RSS peak during Upload")) else "-"
            for k, v in results.items()
        }
        table.add(metric, {k: v.get(metric, absent[k]) for k, v in results.items()})
    table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
