"""Upload benchmark: one large wheel end to end, MB/s and the server's peak memory.

- legacy form upload with ``curl -F`` to Pallet, pypiserver and devpi-server;
- Pallet's Upload 2.0 ``http-post-bytes`` (create session, create file, POST bytes, complete,
  publish), timed from the first request until the file is published.

    python benchmarks/upload.py [--size 1G] [--only pallet]
"""

from __future__ import annotations

import argparse
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
from common import BIN, RssSampler, Table, free_port, start, start_devpi  # noqa: E402

from pallet.config import parse_size  # noqa: E402

V2 = "application/vnd.pypi.upload.v2+json"


def build_wheel(directory: Path, name: str, size: int) -> Path:
    """A valid wheel whose payload is ``size`` bytes of incompressible data (stored, not deflated)."""
    path = directory / f"{name}-1.0-py3-none-any.whl"
    block = os.urandom(16 * 2**20)
    info = f"{name}-1.0.dist-info"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        with zf.open(f"{name}/payload.bin", "w", force_zip64=True) as f:
            left = size
            while left > 0:
                f.write(block[: min(left, len(block))])
                left -= len(block)
        zf.writestr(f"{name}/__init__.py", "")
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        zf.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(f"{info}/RECORD", "")
    return path


def curl_upload(url: str, wheel: Path, name: str, auth: str | None) -> float:
    cmd = [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{time_total}",
        "-F",
        ":action=file_upload",
        "-F",
        "protocol_version=1",
        "-F",
        f"name={name}",
        "-F",
        "version=1.0",
        "-F",
        "filetype=bdist_wheel",
        "-F",
        "pyversion=py3",
        "-F",
        f"content=@{wheel}",
        url,
    ]
    if auth:
        cmd[1:1] = ["-u", auth]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True).stdout
    code, seconds = out.split()
    if not code.startswith("2"):
        raise RuntimeError(f"upload answered {code}")
    return float(seconds)


def mbps(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:,.0f}"


def run_pallet(workdir: Path, wheels: dict[str, Path], size: int) -> dict[str, str]:
    data = workdir / "pallet"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(
        "pallet",
        [
            str(BIN / "pallet"),
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--no-access-log",
        ],
        workdir,
        f"{base}/_/health",
    )
    out = {}
    try:
        token = (
            subprocess.run(
                [str(BIN / "pallet"), "token", "create", "--data-dir", str(data)],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        with RssSampler(proc) as rss:
            seconds = curl_upload(
                f"{base}/legacy/", wheels["legacy"], "benchlegacy", f"__token__:{token}"
            )
        out["legacy form upload (MB/s)"] = mbps(size, seconds)
        out["legacy peak RSS (MB)"] = f"{rss.peak / 1024:.0f}"
        with RssSampler(proc) as rss:
            post_seconds, seconds = upload_v2(base, token, wheels["v2"])
        out["Upload 2.0 bytes POST (MB/s)"] = mbps(size, post_seconds)
        out["Upload 2.0 open→published (MB/s)"] = mbps(size, seconds)
        out["Upload 2.0 peak RSS (MB)"] = f"{rss.peak / 1024:.0f}"
    finally:
        proc.stop()
    return out


def upload_v2(base: str, token: str, wheel: Path) -> tuple[float, float]:
    """The whole Upload 2.0 flow; the digest is computed before the clock starts, as a client
    that built the wheel would already know it."""
    sha = hashlib.sha256()
    with wheel.open("rb") as f:
        while chunk := f.read(2**20):
            sha.update(chunk)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": V2, "Accept": V2}
    meta = {"meta": {"api-version": "2.0"}}
    with httpx.Client(headers=headers, timeout=600) as c:
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
                    "size": wheel.stat().st_size,
                    "hashes": {"sha256": sha.hexdigest()},
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
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(wheel.stat().st_size),
            },
        ).raise_for_status()
        post_seconds = time.perf_counter() - posted
        c.post(body["links"]["complete"], content=json.dumps(meta)).raise_for_status()
        deadline = time.monotonic() + 600
        while c.get(body["links"]["file-upload-session"]).json()["status"] == "processing":
            if time.monotonic() > deadline:
                raise RuntimeError("file stayed processing")
            time.sleep(0.05)
        c.post(links["publish"], content=json.dumps(meta)).raise_for_status()
        return post_seconds, time.perf_counter() - started


def run_pypiserver(workdir: Path, wheels: dict[str, Path], size: int) -> dict[str, str]:
    packages = workdir / "pypiserver"
    packages.mkdir()
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
            str(packages),
        ],
        workdir,
        f"http://127.0.0.1:{port}/simple/",
    )
    try:
        with RssSampler(proc) as rss:
            seconds = curl_upload(
                f"http://127.0.0.1:{port}/", wheels["legacy"], "benchlegacy", None
            )
        return {
            "legacy form upload (MB/s)": mbps(size, seconds),
            "legacy peak RSS (MB)": f"{rss.peak / 1024:.0f}",
        }
    finally:
        proc.stop()


def run_devpi(workdir: Path, wheels: dict[str, Path], size: int) -> dict[str, str]:
    proc, base = start_devpi(workdir)
    try:
        with RssSampler(proc) as rss:
            seconds = curl_upload(
                f"{base}/bench/dev/", wheels["legacy"], "benchlegacy", "bench:bench"
            )
        return {
            "legacy form upload (MB/s)": mbps(size, seconds),
            "legacy peak RSS (MB)": f"{rss.peak / 1024:.0f}",
        }
    finally:
        proc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1G", help="payload size, e.g. 200M or 1G")
    parser.add_argument("--only", choices=["pallet", "pypiserver", "devpi"])
    args = parser.parse_args()
    size = parse_size(args.size)
    workdir = Path(tempfile.mkdtemp(prefix="pallet-upload-bench-"))
    results: dict[str, dict[str, str]] = {}
    try:
        wheels = {
            "legacy": build_wheel(workdir, "benchlegacy", size),
            "v2": build_wheel(workdir, "benchv2", size),
        }
        actual = wheels["legacy"].stat().st_size
        runners = [("pallet", run_pallet), ("pypiserver", run_pypiserver), ("devpi", run_devpi)]
        for name, runner in runners:
            if args.only in (None, name):
                try:
                    results[name] = runner(workdir, wheels, actual)
                except Exception as exc:  # noqa: BLE001 - report and carry on
                    print(f"{name} failed: {exc}", file=sys.stderr)
                    results[name] = {}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    table = Table(f"Upload of a {actual / 1e9:.2f} GB wheel on 127.0.0.1", list(results))
    for metric in [
        "legacy form upload (MB/s)",
        "legacy peak RSS (MB)",
        "Upload 2.0 bytes POST (MB/s)",
        "Upload 2.0 open→published (MB/s)",
        "Upload 2.0 peak RSS (MB)",
    ]:
        table.add(metric, {k: v.get(metric, "-") for k, v in results.items()})
    table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
