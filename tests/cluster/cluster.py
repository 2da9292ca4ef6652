"""Machinery for the cluster tests: PostgreSQL, SeaweedFS, replicas of ``pallet serve`` and nginx.

Everything listens on 127.0.0.1, on free ports, and is started and ended here, by PID (a replica
by its process group: ``pallet serve`` is a master plus its workers, started in a session of its
own so a SIGKILL takes the whole replica down at once, the way a machine failure would).

- ``DedicatedPostgres``: a throwaway PostgreSQL cluster (``initdb``/``pg_ctl``) of its own, so it
  can be restarted without disturbing the shared cluster of ``scripts/postgres.sh`` that other
  test workers use at the same time. As root it belongs to the ``postgres`` user, like that one.
- ``DedicatedSeaweedFS``: a SeaweedFS of its own (``tests.seaweedfs``) that can be stopped and
  started again on the same ports and data dir.
- ``Replica``: one ``pallet serve --workers N``; ``kill()`` is a SIGKILL of its process group,
  ``start()`` brings it back on the same port.
- ``Nginx``: nginx running exactly the block of ``docs/deploy.md`` (``deploy_nginx_block``), with
  only its marked lines filled in (``render_nginx_block``).
- ``Cluster``: all of the above, plus tokens and the ``pallet`` CLI against the shared database
  and bucket.
- Clients (``pallet publish``, ``twine``, ``uv publish``, ``uv publish --direct``) as functions of
  a URL, a token and files, returning a ``ClientRun``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import create_postgres_database
from tests.e2e.support import (
    POSTGRES_ENV,
    free_port,
    http_get,
    pallet_command,
    run,
    tool,
)
from tests.seaweedfs import SeaweedFS, start_seaweedfs

REPO = Path(__file__).resolve().parents[2]
DEPLOY_DOC = REPO / "docs" / "deploy.md"
NGINX_SECTION = "## nginx in front of the replicas"
REPLICA_MARK = "# pallet:replica"
LISTEN_MARK = "# pallet:listen"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
MECHANISMS = ("http-post-bytes", "vnd-pallet-presigned-put", "vnd-pallet-s3multipart-presigned")
#: uv 0.12.6, the last uv with ``publish --direct`` (``make install`` puts it apart).
UV_DIRECT = Path(
    os.environ.get("PALLET_TEST_UV_DIRECT")
    or Path(sys.executable).parent.parent / "uv-direct" / "bin" / "uv"
)
PROCESSING_WAIT = 40  # seconds `pallet publish` waits for a file in `processing`
START_TIMEOUT = 90.0  # generous: the machine is shared, and replicas start (and migrate) together


class Exited(RuntimeError):
    """A process we wait for is gone: waiting longer cannot help."""


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> float:
    """Poll ``check`` until it is true; the seconds it took. Raises ``TimeoutError`` otherwise,
    and ``Exited`` at once if ``check`` raises it."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        try:
            if check():
                return time.monotonic() - start
        except Exited:
            raise
        except Exception:  # noqa: BLE001, S110 - not there yet; the deadline decides
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


# --------------------------------------------------------------------------------- PostgreSQL


def require_postgres() -> str:
    """The shared PostgreSQL URL of ``make test``: the sign that ``scripts/postgres.sh`` ran (it
    installs the server binaries the dedicated cluster is made with). Never a skip."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        import pytest

        pytest.fail(
            f"{POSTGRES_ENV} is not set: the cluster tests need PostgreSQL; run them through "
            f'`make test`, or with {POSTGRES_ENV}="$(bash scripts/postgres.sh start)"'
        )
    return url


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parent)
    if not found:
        raise RuntimeError(
            "PostgreSQL server binaries not found (scripts/postgres.sh installs them)"
        )
    return found[-1].parent


class DedicatedPostgres:
    """A PostgreSQL cluster for one test: its own data dir (outside pytest's root-only tmp, since
    the server runs as ``postgres`` when we are root) and its own free port."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="pallet-cluster-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        init = self._pg(
            "initdb", "-D", str(self.data), "-U", "pallet", "--auth=trust", "-E", "UTF8"
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{init.stdout}")

    @property
    def admin_url(self) -> str:
        return f"postgresql://pallet@127.0.0.1:{self.port}/postgres"

    def _pg(self, program: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / program), *args]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return run(cmd, timeout=timeout, cwd=self.root)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=400"
        )
        started = self._pg(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start",
            "-o", options,
        )  # fmt: skip
        if started.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed:\n{started.stdout}\n{tail(self.log)}")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: every connection is cut, as a restart by an operator or a failover does."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def create_database(self) -> str:
        url, _name = create_postgres_database(self.admin_url)
        return url

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------------- SeaweedFS


class DedicatedSeaweedFS:
    """``tests.seaweedfs.start_seaweedfs``, plus a restart on the same ports and data dir: the
    same command line again (weed reloads its state from the data dir)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.weed: SeaweedFS = start_seaweedfs(base)
        self.command = [str(a) for a in self.weed.process.args]  # type: ignore[union-attr]
        self.restarts = 0

    @property
    def endpoint(self) -> str:
        return self.weed.endpoint

    def env(self) -> dict[str, str]:
        return self.weed.env()

    def new_bucket(self) -> str:
        return self.weed.new_bucket()

    def stop(self) -> None:
        self.weed.stop()

    def start(self, timeout: float = START_TIMEOUT) -> None:
        self.restarts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        with self.weed.log.open("ab") as out:
            out.write(f"\n--- restart {self.restarts} ---\n".encode())
            out.flush()
            self.weed.process = subprocess.Popen(
                self.command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                stdin=subprocess.DEVNULL,
            )
        wait_for(self._up, timeout, f"SeaweedFS back after restart {self.restarts}", 0.3)

    def _up(self) -> bool:
        if self.weed.process.poll() is not None:
            raise Exited(f"weed exited on restart: {tail(self.weed.log)}")
        self.weed.client().list_buckets()
        return True


# ----------------------------------------------------------------------------------- replicas


@dataclass
class Replica:
    """One ``pallet serve --workers N``, in a process group of its own."""

    name: str
    port: int
    base: Path
    args: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    starts: int = 0
    kills: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.logs[-1]

    def start(self) -> None:
        """Start (or restart, same port and data dir) without waiting: see ``wait_healthy``."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.base.mkdir(parents=True, exist_ok=True)
        log = self.base / f"serve-{self.starts}.log"
        self.starts += 1
        self.logs.append(log)
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*pallet_command(), "serve", "--port", str(self.port), *self.args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> float:
        def healthy() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise Exited(
                    f"replica {self.name} exited with {self.process.returncode}:\n"
                    f"{tail(self.log_path, 80)}"
                )
            return http_get(f"{self.url}/_/health", timeout=5).status == 200

        try:
            return wait_for(healthy, timeout, f"replica {self.name} healthy")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{tail(self.log_path, 80)}") from None

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)  # the group started with start_new_session
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the master and every worker at once."""
        self._signal_group(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)
        self.kills += 1

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        self._signal_group(signal.SIGKILL)  # workers left behind, if any
        if self.process.poll() is None:
            self.process.wait(timeout=10)

    def log(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{tail(p, 400)}" for p in self.logs)


# -------------------------------------------------------------------------------------- nginx


def nginx_binary() -> str:
    """``PALLET_TEST_NGINX`` (set by ``make test``), else what ``scripts/nginx.sh`` finds or
    installs."""
    configured = os.environ.get("PALLET_TEST_NGINX")
    if configured and Path(configured).is_file():
        return configured
    found = run(["bash", str(REPO / "scripts" / "nginx.sh")], timeout=600)
    path = found.stdout.strip().splitlines()[-1] if found.stdout.strip() else ""
    if found.returncode != 0 or not Path(path).is_file():
        raise RuntimeError(f"nginx is not available (scripts/nginx.sh):\n{found.stdout}")
    return path


def deploy_nginx_block(doc: Path = DEPLOY_DOC) -> str:
    """The one ```nginx block of the section ``NGINX_SECTION`` of docs/deploy.md."""
    text = doc.read_text()
    start = text.find(NGINX_SECTION + "\n")
    if start < 0:
        raise AssertionError(f"{doc.name} has no section {NGINX_SECTION!r}")
    section = text[start + len(NGINX_SECTION) :]
    following = re.search(r"^## ", section, re.MULTILINE)
    section = section[: following.start()] if following else section
    blocks = re.findall(r"^```nginx\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    if len(blocks) != 1:
        raise AssertionError(f"{NGINX_SECTION!r} must hold exactly one nginx block: {len(blocks)}")
    return blocks[0]


def render_nginx_block(block: str, listen: str, replicas: list[str]) -> str:
    """Fill in the marked lines and nothing else: every ``# pallet:replica`` line gives way to one
    line per replica (the first marked line's parameters, the replica's address); the
    ``# pallet:listen`` line gets ``listen``."""
    lines = block.splitlines()
    marked = [i for i, line in enumerate(lines) if line.rstrip().endswith(REPLICA_MARK)]
    listens = [i for i, line in enumerate(lines) if line.rstrip().endswith(LISTEN_MARK)]
    if not marked or len(listens) != 1:
        raise AssertionError(
            f"the nginx block needs {REPLICA_MARK!r} server lines and one {LISTEN_MARK!r} line"
        )
    template = lines[marked[0]]
    if not re.match(r"\s*server\s+\S+", template):
        raise AssertionError(f"not an upstream server line: {template!r}")
    if not re.match(r"\s*listen\s+\S+", lines[listens[0]]):
        raise AssertionError(f"not a listen line: {lines[listens[0]]!r}")
    lines[listens[0]] = re.sub(
        r"(\s*listen\s+)\S+?(;|\s)", rf"\g<1>{listen}\2", lines[listens[0]], count=1
    )
    servers = [
        re.sub(r"(\s*server\s+)\S+", rf"\g<1>{address}", template, count=1) for address in replicas
    ]
    out: list[str] = []
    for i, line in enumerate(lines):
        if i == marked[0]:
            out.extend(servers)
        elif i not in marked:
            out.append(line)
    return "\n".join(out) + "\n"


class Nginx:
    """Our own nginx: its own prefix, config, pid file and logs; ``daemon off`` so the process we
    start is the master, ended by its PID."""

    LOG_FORMAT = (
        "log_format cluster '$msec $status $request_method $uri $upstream_addr "
        "$upstream_status $request_time';"
    )

    def __init__(self, prefix: Path, port: int, block: str) -> None:
        self.binary = nginx_binary()
        self.prefix = prefix
        self.port = port
        self.conf = prefix / "nginx.conf"
        self.error_log = prefix / "error.log"
        self.access_log = prefix / "access.log"
        self.process: subprocess.Popen | None = None
        prefix.mkdir(parents=True, exist_ok=True)
        temp = prefix / "temp"
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (temp / sub).mkdir(parents=True, exist_ok=True)
        (prefix / "pallet.conf").write_text(block)
        # As root nginx's workers would switch to `nobody`, which cannot reach pytest's root-only
        # temp dirs: they stay root (only loopback is served, by a process we end ourselves).
        user = "user root root;\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"{user}daemon off;\nmaster_process on;\nworker_processes 2;\n"
            f"pid {prefix / 'nginx.pid'};\nerror_log {self.error_log} info;\n"
            "events { worker_connections 2048; }\n"
            "http {\n"
            f"    {self.LOG_FORMAT}\n"
            f"    access_log {self.access_log} cluster;\n"
            f"    client_body_temp_path {temp / 'body'};\n"
            f"    proxy_temp_path {temp / 'proxy'};\n"
            f"    fastcgi_temp_path {temp / 'fastcgi'};\n"
            f"    uwsgi_temp_path {temp / 'uwsgi'};\n"
            f"    scgi_temp_path {temp / 'scgi'};\n"
            f"    include {prefix / 'pallet.conf'};\n"
            "}\n"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _args(self) -> list[str]:
        return [
            self.binary,
            "-p",
            f"{self.prefix}/",
            "-c",
            str(self.conf),
            "-e",
            str(self.error_log),
        ]

    def start(self) -> None:
        checked = run([*self._args(), "-t"], timeout=60)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t refused the config:\n{checked.stdout}")
        with (self.prefix / "stdout.log").open("wb") as out:
            self.process = subprocess.Popen(
                self._args(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )

        def up() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise Exited(f"nginx exited: {tail(self.error_log)}")
            return http_get(f"{self.url}/_/health", timeout=5).status == 200

        wait_for(up, START_TIMEOUT, "nginx answering /_/health")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then the master
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


# ------------------------------------------------------------------------------------ cluster


@dataclass
class Cluster:
    """PostgreSQL + SeaweedFS + replicas + nginx, sharing one database, bucket and secret."""

    root: Path
    postgres: DedicatedPostgres
    weed: DedicatedSeaweedFS
    database_url: str
    storage_url: str
    secret_key: str
    nginx: Nginx
    replicas: list[Replica]
    token: str = ""
    startup_seconds: float = 0.0
    startup_problems: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The index as clients see it: nginx."""
        return self.nginx.url

    def server_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PALLET_", "AWS_"))}
        env.update(self.weed.env(), PALLET_SECRET_KEY=self.secret_key)
        return env

    def cli(
        self, *args: str, data_dir: Path | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """``pallet <args>`` against the shared database and bucket (stdout and stderr apart);
        ``data_dir``: a replica's (its spool), else one of the CLI's own."""
        cmd = [
            *pallet_command(), *args,
            "--data-dir", str(data_dir or self.root / "cli-data"),
            "--database-url", self.database_url,
        ]  # fmt: skip
        if args[0] in ("gc", "fsck"):
            cmd += ["--storage-url", self.storage_url]
        return subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self.server_env(),
        )

    def create_token(self, *args: str) -> str:
        result = self.cli("token", "create", *args)
        assert result.returncode == 0, f"token create failed\n{result.stdout}\n{result.stderr}"
        lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        assert lines, f"token create printed nothing\n{result.stderr}"
        return lines[-1]

    def cli_json(self, *args: str, data_dir: Path | None = None, timeout: float = 180) -> dict:
        result = self.cli(*args, "--json", data_dir=data_dir, timeout=timeout)
        try:
            return json.loads(result.stdout[result.stdout.find("{") :])
        except ValueError:
            raise AssertionError(
                f"pallet {' '.join(args)} [exit {result.returncode}]:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            ) from None

    def all_healthy(self, timeout: float = START_TIMEOUT) -> None:
        for replica in self.replicas:
            replica.wait_healthy(timeout)

    def stop(self) -> None:
        self.nginx.stop()
        for replica in self.replicas:
            replica.stop()

    def logs(self) -> str:
        parts = [f"===== replica {r.name} ({r.url})\n{r.log()}" for r in self.replicas]
        parts.append(f"===== nginx error.log\n{tail(self.nginx.error_log, 100)}")
        return "\n".join(parts)


def start_cluster(root: Path, *, replicas: int = 3, workers: int = 2) -> Cluster:
    """Start every piece, the replicas all at once (each runs the migrations as it starts, so
    their start is itself a check that concurrent starts on one database are safe)."""
    require_postgres()
    began = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    postgres = DedicatedPostgres()
    weed: DedicatedSeaweedFS | None = None
    nginx: Nginx | None = None
    started: list[Replica] = []
    try:
        postgres.start()
        database_url = postgres.create_database()
        weed = DedicatedSeaweedFS(root / "seaweedfs")
        bucket = weed.new_bucket()
        storage_url = f"s3://{bucket}?endpoint_url={weed.endpoint}"
        nginx_port = free_port()
        ports = [free_port() for _ in range(replicas)]
        while len(set(ports + [nginx_port])) < replicas + 1:
            ports = [free_port() for _ in range(replicas)]
        block = render_nginx_block(
            deploy_nginx_block(), f"127.0.0.1:{nginx_port}", [f"127.0.0.1:{p}" for p in ports]
        )
        nginx = Nginx(root / "nginx", nginx_port, block)
        cluster = Cluster(
            root=root,
            postgres=postgres,
            weed=weed,
            database_url=database_url,
            storage_url=storage_url,
            secret_key=secrets.token_urlsafe(32),
            nginx=nginx,
            replicas=[],
        )
        env = cluster.server_env()
        for i, port in enumerate(ports):
            args = [
                "--host", "127.0.0.1",
                "--workers", str(workers),
                "--data-dir", str(root / f"replica{i}" / "data"),
                "--database-url", database_url,
                "--storage-url", storage_url,
                # Links go to nginx: a session opened through one replica goes on through others.
                "--base-url", nginx.url,
                "--forwarded-allow-ips", "127.0.0.1",
                # Background duties run often, on every replica at once.
                "--gc-interval", "10",
                "--gc-grace", "120",
                # Files above 48 kB are verified in the background (`processing`).
                "--deferred-complete-size", "48K",
            ]  # fmt: skip
            cluster.replicas.append(Replica(f"r{i}", port, root / f"replica{i}", args, env))
        started = cluster.replicas
        for replica in cluster.replicas:
            replica.start()
        for replica in cluster.replicas:
            try:
                replica.wait_healthy()
            except Exited as exc:
                # Replicas starting together on one database must all come up. One that did
                # not is a finding (the test reports it), not a reason to check nothing else:
                # it is started once more, alone.
                cluster.startup_problems.append(
                    f"replica {replica.name}, started together with the others, exited:\n"
                    + str(exc)[-4000:]
                )
                replica.start()
                replica.wait_healthy()
        nginx.start()
        cluster.token = cluster.create_token("--scope", "upload", "--description", "cluster")
        cluster.startup_seconds = time.monotonic() - began
        return cluster
    except BaseException:
        if nginx is not None:
            nginx.stop()
        for replica in started:
            replica.stop()
        if weed is not None:
            weed.stop()
        postgres.destroy()
        raise


# ------------------------------------------------------------------------------------ clients


@dataclass
class ClientRun:
    """One client invocation (and its re-runs): what it published and how it ended."""

    kind: str
    url: str
    files: list[Path]
    returncode: int = -1
    output: str = ""
    attempts: int = 0
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def digests(self) -> dict[str, str]:
        return {f.name: sha256_file(f) for f in self.files}

    def describe(self) -> str:
        return (
            f"{self.kind} -> {self.url} [exit {self.returncode}, {self.attempts} attempt(s)] "
            f"{[f.name for f in self.files]}\n{self.output[-2500:]}"
        )


#: The client kinds, each a way in: Upload 2.0 with each mechanism, and every legacy client.
CLIENT_KINDS = (
    *(f"pallet:{m}" for m in MECHANISMS),
    "pallet:legacy",
    "uv",
    "uv-direct",
    "twine",
)


def client_command(
    kind: str,
    url: str,
    token: str,
    files: list[Path],
    *,
    resume: bool = False,
    check_url: bool = True,
) -> list[str]:
    """The command line of one client kind publishing ``files`` to the index at ``url``;
    ``check_url``: uv first asks the index whether it has the file (and skips it if so)."""
    names = [str(f) for f in files]
    if kind.startswith("pallet:"):
        how = kind.split(":", 1)[1]
        cmd = [*pallet_command(), "publish", "--url", url, "--token", token, "--quiet"]
        # A bounded wait for files the server verifies in the background (default: an hour).
        cmd += ["--timeout", str(PROCESSING_WAIT)]
        cmd += ["--protocol", "legacy"] if how == "legacy" else ["--mechanism", how]
        if resume and how != "legacy":
            cmd.append("--resume")
        return [*cmd, *names]
    if kind == "uv":
        return [
            tool("uv"), "publish", "--publish-url", f"{url}/legacy/", "--token", token,
            "--trusted-publishing", "never",
            *(["--check-url", f"{url}/simple/"] if check_url else []), *names,
        ]  # fmt: skip
    if kind == "uv-direct":
        return [
            str(UV_DIRECT), "publish", "--direct", "--preview-features", "direct-publish",
            "--publish-url", f"{url}/direct/", "-t", token, *names,
        ]  # fmt: skip
    if kind == "twine":
        return [
            tool("twine"), "upload", "--repository-url", f"{url}/legacy/", "-u", "__token__",
            "-p", token, "--non-interactive", "--disable-progress-bar", *names,
        ]  # fmt: skip
    raise ValueError(kind)


#: A monotonic time after which no client starts or re-runs, and none outlives (set by the test
#: from its timeout, so a test that runs out of time still ends its clients and tears down).
CLIENT_DEADLINE = [float("inf")]


def run_client(
    kind: str,
    url: str,
    token: str,
    files: list[Path],
    env: dict[str, str],
    *,
    retries: int = 0,
    timeout: float = 90,
    check_url: bool = True,
    stop_retrying: Callable[[], bool] | None = None,
) -> ClientRun:
    """Run a client; on failure re-run it up to ``retries`` times (publishing identical bytes
    again is idempotent), each re-run of ``pallet publish`` with ``--resume``."""
    result = ClientRun(kind, url, files)
    began = time.monotonic()
    env = {**env, "COLUMNS": "1000", "UV_TEST_NO_HTTP_RETRY_DELAY": "1"}
    for attempt in range(retries + 1):
        left = CLIENT_DEADLINE[0] - time.monotonic()
        if left < 1:
            result.output += "\n[not run: the test's time is up]"
            break
        result.attempts = attempt + 1
        cmd = client_command(kind, url, token, files, resume=attempt > 0, check_url=check_url)
        try:
            done = run(cmd, env=env, timeout=min(timeout, left))
            result.returncode, result.output = done.returncode, done.stdout
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or b""
            out = out.decode(errors="replace") if isinstance(out, bytes) else out
            result.returncode, result.output = -9, f"[timed out]\n{out}"
        result.outputs.append(result.output)
        if result.ok or attempt == retries or (stop_retrying and stop_retrying()):
            break
        time.sleep(0.5 + attempt)
    result.seconds = time.monotonic() - began
    return result


def require_uv_direct() -> None:
    if not UV_DIRECT.exists():
        import pytest

        pytest.fail(f"uv 0.12.6 is not installed at {UV_DIRECT} (make install does it)")
