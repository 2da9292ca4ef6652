"""Machinery for the end-to-end tests: a real ``pallet serve`` subprocess and scrubbed clients.

Kept out of ``conftest.py`` so test modules import it as an ordinary module; every server gets a
free 127.0.0.1 port and its own data directory, and clients run with an environment from which
the machine's pip/uv configuration (extra indexes, find-links, constraints) has been removed, so
only our index can satisfy an install.
"""

from __future__ import annotations

import base64
import ensurepip
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.dists import dist_name, make_sdist, make_wheel

BIN = Path(sys.executable).parent
HEALTH_TIMEOUT = 30.0
POSTGRES_ENV = "PALLET_TEST_POSTGRES_URL"
LOG_TAIL_LINES = 200

# Servers alive right now, so conftest can attach their logs to a failing test's report.
RUNNING: list[Server] = []


def tool(name: str) -> str:
    """A console script installed next to the running interpreter (twine, uv), else on PATH."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; install the 'test' extra")
    return found


#: twine 6.1, the last twine that sends ``--skip-existing`` to an index other than PyPI (6.2 and
#: later refuse the flag before any request). ``make install`` puts it in its own folder, apart
#: from the current twine of the ``test`` extra; it runs with that folder first on PYTHONPATH.
TWINE_6_1 = Path(
    os.environ.get("PALLET_TEST_TWINE_6_1") or Path(sys.executable).parent.parent / "twine-6.1"
)


def twine_6_1(env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run twine 6.1 (see ``TWINE_6_1``)."""
    if not (TWINE_6_1 / "twine" / "__init__.py").is_file():
        pytest.fail(f"twine 6.1 is not installed at {TWINE_6_1} (make install does it)")
    return [sys.executable, "-m", "twine"], {**env, "PYTHONPATH": str(TWINE_6_1)}


def pallet_command() -> list[str]:
    """``python -m pallet`` once the package supports it, else the installed console script."""
    if importlib.util.find_spec("pallet.__main__") is not None:
        return [sys.executable, "-m", "pallet"]
    return [tool("pallet")]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def client_env(tmp: Path) -> dict[str, str]:
    """An environment in which pip, uv and twine see only what the command line tells them.

    The machine configures find-links, extra indexes and a global constraint file through
    ``PIP_*``/config files; any of those would let an install succeed without our index.
    """
    drop = ("PIP_", "UV_", "TWINE_", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    cache = tmp / "uv-cache"
    cache.mkdir(parents=True, exist_ok=True)
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_CONSTRAINT="",
        PIP_NO_INPUT="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_ROOT_USER_ACTION="ignore",
        PIP_NO_CACHE_DIR="1",
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(cache),
        UV_PYTHON_DOWNLOADS="never",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        NO_COLOR="1",
    )
    return env


def run(
    cmd: list[str | Path],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion with stdout and stderr merged into ``.stdout``."""
    result = subprocess.run(
        [str(c) for c in cmd],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    # rich pads every line to the console width; keep failure messages readable.
    result.stdout = "\n".join(line.rstrip() for line in result.stdout.splitlines())
    return result


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """The command and its output, for assertion messages."""
    args = result.args if isinstance(result.args, list) else [result.args]
    return f"$ {' '.join(map(str, args))}\n[exit {result.returncode}]\n{result.stdout}"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


#: Servers started with ``--tls-certfile`` use a certificate made for the test (tests.tls);
#: only 127.0.0.1 is ever asked, so the opener does not check it.
_OPENER = urllib.request.build_opener(
    urllib.request.ProxyHandler({}),
    urllib.request.HTTPSHandler(context=ssl._create_unverified_context()),  # noqa: S323
)


def http_get(
    url: str, *, accept: str | None = None, token: str | None = None, timeout: float = 10
) -> Response:
    """A GET that bypasses proxies and returns error responses instead of raising them."""
    request = urllib.request.Request(url)  # noqa: S310 - tests only build http://127.0.0.1 URLs
    if accept:
        request.add_header("Accept", accept)
    if token:
        basic = base64.b64encode(f"__token__:{token}".encode()).decode()
        request.add_header("Authorization", f"Basic {basic}")
    try:
        with _OPENER.open(request, timeout=timeout) as resp:
            return Response(
                resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
            )
    except urllib.error.HTTPError as err:
        return Response(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


def listed(server: Server, project: str) -> dict[str, str]:
    """{filename: sha256} of a project's simple page (PEP 691 JSON); empty if it is not there."""
    import json

    r = http_get(f"{server.simple_url}{project}/", accept="application/vnd.pypi.simple.v1+json")
    if r.status != 200:
        return {}
    return {f["filename"]: f["hashes"]["sha256"] for f in json.loads(r.body)["files"]}


@dataclass
class Server:
    """A running ``pallet serve`` and the means to drive its CLI against the same database."""

    port: int
    data_dir: Path
    database_url: str | None
    log_path: Path
    process: subprocess.Popen[bytes]
    token: str = ""
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    @property
    def url(self) -> str:
        scheme = "https" if "--tls-certfile" in self.extra_args else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def upload_url(self) -> str:
        return f"{self.url}/legacy/"

    @property
    def simple_url(self) -> str:
        return f"{self.url}/simple/"

    def authed_simple_url(self, token: str) -> str:
        return (
            f"http://__token__:{urllib.parse.quote(token, safe='')}@127.0.0.1:{self.port}/simple/"
        )

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``pallet <args> --data-dir ... [--database-url ...]``; stdout and stderr separate."""
        cmd = [*pallet_command(), *args, "--data-dir", str(self.data_dir)]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        return subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def create_token(self, *args: str) -> str:
        """``pallet token create``: the token is the last line of stdout."""
        result = self.cli("token", "create", *args)
        assert result.returncode == 0, (
            f"token create failed [exit {result.returncode}]\n{result.stdout}\n{result.stderr}"
        )
        lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        assert lines, f"token create printed nothing\n{result.stderr}"
        return lines[-1]

    def log(self, tail: int | None = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        lines = text.splitlines()
        return "\n".join(lines[-tail:] if tail else lines)

    def stop(self) -> None:
        """SIGTERM by PID, give uvicorn time to drain, then SIGKILL."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self in RUNNING:
            RUNNING.remove(self)


def wait_healthy(server: Server, timeout: float = HEALTH_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last = "no response"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"pallet serve exited with {server.process.returncode} before becoming healthy\n"
                f"{server.log(None)}"
            )
        try:
            resp = http_get(f"{server.url}/_/health", timeout=2)
            if resp.status == 200:
                return
            last = f"{resp.status} {resp.body[:300]!r}"
        except OSError as err:
            last = repr(err)
        time.sleep(0.2)
    raise RuntimeError(f"pallet serve not healthy after {timeout}s ({last})\n{server.log(None)}")


def start_server(
    base: Path,
    *,
    database_url: str | None = None,
    private: bool = False,
    extra_args: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> Server:
    """Start ``pallet serve``, wait for ``/_/health`` and mint an upload token with the CLI.
    Its environment has no ``PALLET_*`` but ``extra_env``'s."""
    base.mkdir(parents=True, exist_ok=True)
    data_dir = base / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALLET_")}
    env.update(extra_env or {})
    for attempt in range(3):
        port = free_port()
        log_path = base / f"serve-{attempt}.log"
        cmd = [
            *pallet_command(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ]
        if database_url:
            cmd += ["--database-url", database_url]
        if private:
            cmd.append("--private")
        cmd += list(extra_args)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        server = Server(port, data_dir, database_url, log_path, process, extra_args=extra_args)
        RUNNING.append(server)
        try:
            wait_healthy(server)
        except RuntimeError:
            server.stop()
            # Another process may have grabbed the port between probe and bind: try another.
            if "address already in use" in server.log(None).lower() and attempt < 2:
                continue
            raise
        server.token = server.create_token("--scope", "upload", "--description", "e2e")
        return server
    raise AssertionError("unreachable")


class PostgresDatabases:
    """Creates a throwaway database per server on the PostgreSQL named by the environment."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.created: list[str] = []

    def _admin(self):  # noqa: ANN202 - psycopg is optional for SQLite-only runs
        import psycopg

        return psycopg.connect(self.base_url, autocommit=True, connect_timeout=10)

    def create(self) -> str:
        name = f"pallet_e2e_{secrets.token_hex(6)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        parts = urllib.parse.urlsplit(self.base_url)
        return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))

    def drop_all(self) -> None:
        with self._admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


@dataclass
class ServerFactory:
    base: Path
    database: PostgresDatabases | None
    started: list[Server] = field(default_factory=list)

    def __call__(
        self,
        *,
        private: bool = False,
        extra_args: tuple[str, ...] = (),
        extra_env: dict[str, str] | None = None,
    ) -> Server:
        url = self.database.create() if self.database else None
        base = self.base / f"server{len(self.started)}"
        server = start_server(base, database_url=url, private=private, extra_args=extra_args,
                              extra_env=extra_env)  # fmt: skip
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@dataclass
class Dists:
    """Builds each distribution once per session: the builders embed timestamps, so rebuilding
    would produce different bytes under the same filename, which the index rightly rejects."""

    root: Path
    _cache: dict[tuple, Path] = field(default_factory=dict)

    def wheel(self, name: str, version: str, *, requires: tuple[str, ...] = (), variant: str = ""):
        return self._build("whl", name, version, requires, variant)

    def sdist(self, name: str, version: str, *, requires: tuple[str, ...] = (), variant: str = ""):
        return self._build("sdist", name, version, requires, variant)

    def _build(
        self, kind: str, name: str, version: str, requires: tuple[str, ...], variant: str
    ) -> Path:
        key = (kind, name, version, requires, variant)
        if key not in self._cache:
            directory = self.root / f"{name}-{version}-{variant or 'main'}"
            directory.mkdir(parents=True, exist_ok=True)
            files = (
                {f"{dist_name(name)}/_variant.py": f"VARIANT = {variant!r}\n".encode()}
                if variant
                else {}
            )
            builder = make_wheel if kind == "whl" else make_sdist
            self._cache[key] = builder(
                directory, name, version, requires_dist=list(requires), files=files
            )
        return self._cache[key]


def make_venv(path: Path, env: dict[str, str], *, pip: bool = False) -> Path:
    """A fresh client virtualenv; returns its interpreter.

    pip is seeded offline from the wheel bundled with ensurepip, so nothing but 127.0.0.1 is
    ever contacted.
    """
    result = run([tool("uv"), "venv", "--python", sys.executable, path], env=env, timeout=60)
    assert result.returncode == 0, describe(result)
    python = path / "bin" / "python"
    if pip:
        bundled = Path(ensurepip.__file__).parent / "_bundled"
        result = run(
            [
                tool("uv"),
                "pip",
                "install",
                "--python",
                python,
                "--offline",
                "--no-index",
                "--find-links",
                bundled,
                "pip",
            ],
            env=env,
            timeout=60,
        )
        assert result.returncode == 0, describe(result)
    return python
