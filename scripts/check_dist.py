"""Check a built Pallet wheel the way a user installs it: into a fresh virtual environment, and
as a tool (``uv tool install``), then start ``pallet serve`` from it on 127.0.0.1 and wait for
``/_/health``. Everything lives in a temporary folder; the server is stopped by PID.

    python scripts/check_dist.py dist/pallet-*.whl
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HEALTH_TIMEOUT = 60.0


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        raise SystemExit("uv is needed (pip install uv)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(*cmd: str | Path, env: dict[str, str]) -> str:
    done = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"$ {' '.join(map(str, cmd))}\n{done.stdout}{done.stderr}")
    return done.stdout


def serve_once(pallet: Path, work: Path, env: dict[str, str]) -> None:
    port = _free_port()
    log = (work / "serve.log").open("wb")
    server = subprocess.Popen(
        [pallet, "serve", "--port", str(port), "--data-dir", str(work / "data")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while True:
            try:
                with opener.open(f"http://127.0.0.1:{port}/_/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"pallet serve did not become healthy:\n{(work / 'serve.log').read_text()}")
            time.sleep(0.2)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def main(wheel: Path) -> None:
    uv = _uv()
    with tempfile.TemporaryDirectory(prefix="pallet-dist-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PALLET_", "VIRTUAL_ENV"))}
        env.update(UV_TOOL_DIR=str(work / "tools"), UV_TOOL_BIN_DIR=str(work / "bin"))
        _run(uv, "venv", "--quiet", "--python", sys.executable, work / "venv", env=env)
        python = work / "venv" / "bin" / "python"
        _run(uv, "pip", "install", "--quiet", "--python", python, wheel, env=env)
        version = _run(work / "venv" / "bin" / "pallet", "--version", env=env).strip()
        print(f"fresh venv: {version}")
        serve_once(work / "venv" / "bin" / "pallet", work, env)
        print("fresh venv: pallet serve is healthy")
        _run(uv, "tool", "install", "--quiet", "--python", sys.executable, wheel, env=env)
        print(f"uv tool install: {_run(work / 'bin' / 'pallet', '--version', env=env).strip()}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]).absolute())
