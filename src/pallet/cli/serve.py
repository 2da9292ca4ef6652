"""``pallet serve``: migrate, print where things are, run uvicorn (N worker processes).

The process that runs this stays small: migrations run in a child it forks and waits for, and
with ``--workers N`` it only supervises workers forked from it (pallet.cli.supervisor), each of
which imports the web stack and builds the app itself, from the ``PALLET_*`` environment.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pallet.cli.common import migrated_engine, settings_from_args
from pallet.config import SECRET_KEY_FILE, Settings


def register(sub, common) -> None:  # noqa: ANN001
    p = sub.add_parser("serve", help="run the index")
    common(p)
    p.add_argument("--host", help="bind address (env PALLET_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (env PALLET_PORT, default 8000)")
    p.add_argument("--workers", type=int, help="worker processes (env PALLET_WORKERS)")
    p.add_argument("--private", action="store_true", default=None, help="reads need a token")
    p.add_argument("--max-file-size", help="largest accepted file, e.g. 500M (default 2G)")
    p.add_argument("--no-access-log", dest="access_log", action="store_false", default=None)
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="access and error logs as text lines or one JSON object per line "
        "(env PALLET_LOG_FORMAT, default text)",
    )
    p.add_argument(
        "--replica-id",
        help="this replica's name in /_/metrics and JSON logs "
        "(env PALLET_REPLICA_ID, default <hostname>:<port>)",
    )
    p.add_argument(
        "--download-redirect",
        action="store_true",
        default=None,
        help="S3: redirect downloads to pre-signed GET URLs instead of streaming",
    )
    n = p.add_argument_group("public URL")
    n.add_argument(
        "--base-url", help="the index's public URL, base of every absolute URL (PALLET_BASE_URL)"
    )
    n.add_argument(
        "--allowed-hosts",
        help="without --base-url: Host names to answer to, comma-separated, *.domain allowed "
        "(default: loopback and the bound address)",
    )
    n.add_argument(
        "--forwarded-allow-ips",
        help="proxies whose X-Forwarded-For/-Proto headers are believed (default: none)",
    )
    n.add_argument("--tls-certfile", help="serve HTTPS with this PEM certificate (chain)")
    n.add_argument("--tls-keyfile", help="the certificate's PEM private key")
    t = p.add_argument_group("trusted publishing")
    t.add_argument(
        "--oidc-audience", help="the aud an OIDC token must carry (PALLET_OIDC_AUDIENCE, pallet)"
    )
    t.add_argument(
        "--oidc-jwks",
        action="append",
        metavar="ISSUER=FILE",
        help="pin an issuer's signing keys (JWKS) from a file instead of fetching them; repeatable",
    )
    t.add_argument(
        "--sigstore-online",
        action="store_true",
        default=None,
        help="refresh the Sigstore trust root over the network before verifying attestations",
    )
    u = p.add_argument_group("upstream proxy (docs/proxy.md)")
    u.add_argument(
        "--upstream",
        action="append",
        metavar="[NAME=]URL",
        help="serve projects this index does not have or claim from this simple index "
        "(repeatable, asked in order; credentials from PALLET_UPSTREAM_<NAME>_TOKEN or "
        "_USERNAME/_PASSWORD)",
    )
    u.add_argument("--upstream-allow", action="append", metavar="NAME|NAMESPACE-*",
                   help="only these go upstream (repeatable)")  # fmt: skip
    u.add_argument("--upstream-deny", action="append", metavar="NAME|NAMESPACE-*",
                   help="these never go upstream (repeatable)")  # fmt: skip
    u.add_argument("--offline", action="store_true", default=None,
                   help="serve only what is stored; ask no upstream")  # fmt: skip
    u.add_argument("--upstream-quota",
                   help="bytes of proxied files kept; the least recently used are evicted (0: no limit)")  # fmt: skip
    u.add_argument("--upstream-retry-after", type=float,
                   help="seconds a failing upstream is left alone, its stored pages served (10)")  # fmt: skip
    u.add_argument("--upstream-stale-while-revalidate", type=int,
                   help="seconds past the TTL a page is answered while checked in the background (60)")  # fmt: skip
    u.add_argument("--upstream-page-ttl", type=int,
                   help="seconds an upstream page is served before it is revalidated (600)")  # fmt: skip
    c = p.add_argument_group("slow or lying clients")
    c.add_argument("--header-timeout", type=float, help="seconds for request headers (10)")
    c.add_argument("--body-idle-timeout", type=float, help="seconds a body may stall (30)")
    c.add_argument("--max-connections", type=int, help="open connections per worker (1000)")
    c.add_argument("--keep-alive-timeout", type=float,
                   help="seconds an idle connection stays open; above a front proxy's (75)")  # fmt: skip
    c.add_argument("--min-free-space", help="/_/ready fails below this free space (64M)")
    g = p.add_argument_group("Upload 2.0")
    g.add_argument("--upload-root", help="root path of the Upload 2.0 API (default /upload/2.0/)")
    g.add_argument("--session-lifetime", type=int, help="seconds a new session lives (24h)")
    g.add_argument("--file-session-lifetime", type=int, help="seconds a file session lives (1h)")
    g.add_argument(
        "--deferred-publish",
        action="store_true",
        default=None,
        help="publish answers 202 and finishes in the background",
    )
    g.add_argument(
        "--deferred-complete-size",
        help="verify files from this size in the background (202 processing), default 64M",
    )
    g.add_argument("--gc-interval", type=int, help="seconds between in-server sweeps (300)")
    g.add_argument(
        "--gc-grace",
        type=int,
        help="seconds before sweeps collect unreferenced blobs and staged leftovers (86400)",
    )
    g.add_argument("--presign-ttl", type=int, help="seconds pre-signed upload URLs live (900)")
    g.add_argument("--processing-delay", type=float, help=argparse.SUPPRESS)  # test hook
    g.add_argument(
        "--complete-wait", type=float, help="seconds a deferred complete waits for its outcome (1)"
    )
    g.add_argument("--inject-503", help=argparse.SUPPRESS)  # test hook: see pallet.faults
    g.add_argument("--test-hooks", action="store_true", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Everything here runs in the process that stays the parent of ``--workers N``, so it
    imports nothing of the web stack or the database layer (see pallet.cli.supervisor)."""
    from pallet.config import parse_size
    from pallet.logs import LOG_FORMATS, configure_logging

    settings = settings_from_args(
        args,
        host=args.host,
        port=args.port,
        workers=args.workers,
        private=args.private,
        max_file_size=parse_size(args.max_file_size) if args.max_file_size else None,
        access_log=args.access_log,
        log_format=args.log_format,
        replica_id=args.replica_id,
        download_redirect=args.download_redirect,
        upload_root=args.upload_root,
        session_lifetime=args.session_lifetime,
        file_session_lifetime=args.file_session_lifetime,
        deferred_publish=args.deferred_publish,
        deferred_complete_size=parse_size(args.deferred_complete_size)
        if args.deferred_complete_size
        else None,
        gc_interval=args.gc_interval,
        gc_grace=args.gc_grace,
        processing_delay=args.processing_delay,
        complete_wait=args.complete_wait,
        inject_503=args.inject_503,
        test_hooks=args.test_hooks,  # test hook: see pallet.testhooks
        presign_ttl=args.presign_ttl,
        base_url=args.base_url,
        allowed_hosts=args.allowed_hosts,
        forwarded_allow_ips=args.forwarded_allow_ips,
        header_timeout=args.header_timeout,
        body_idle_timeout=args.body_idle_timeout,
        max_connections=args.max_connections,
        keep_alive_timeout=args.keep_alive_timeout,
        min_free_space=parse_size(args.min_free_space) if args.min_free_space else None,
        tls_certfile=args.tls_certfile,
        tls_keyfile=args.tls_keyfile,
        oidc_audience=args.oidc_audience,
        oidc_jwks=" ".join(args.oidc_jwks) if args.oidc_jwks else None,
        sigstore_online=args.sigstore_online,
        upstreams=" ".join(args.upstream) if args.upstream else None,
        upstream_allow=" ".join(args.upstream_allow) if args.upstream_allow else None,
        upstream_deny=" ".join(args.upstream_deny) if args.upstream_deny else None,
        upstream_offline=args.offline,
        upstream_page_ttl=args.upstream_page_ttl,
        upstream_retry_after=args.upstream_retry_after,
        upstream_stale_while_revalidate=args.upstream_stale_while_revalidate,
        upstream_quota=parse_size(args.upstream_quota) if args.upstream_quota else None,
    )
    if settings.upstreams or settings.upstream_allow or settings.upstream_deny:
        from pallet.core.routing import Claim
        from pallet.proxy.upstreams import parse_upstreams

        try:  # one line here, not an error in every worker as it starts
            parse_upstreams(settings.upstreams)
            for item in f"{settings.upstream_allow} {settings.upstream_deny}".split():
                Claim.parse(item)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
    if bool(settings.tls_certfile) != bool(settings.tls_keyfile):
        raise SystemExit("error: --tls-certfile and --tls-keyfile go together")
    if settings.oidc_jwks:  # checked here, not at the first token exchange
        from pallet.config import parse_pins

        try:
            for path in parse_pins(settings.oidc_jwks).values():
                path.read_bytes()
        except (ValueError, OSError) as exc:
            raise SystemExit(f"error: --oidc-jwks: {exc}") from None
    if settings.inject_503:  # fail here in one line, not in every worker as it starts
        from pallet.faults import parse_spec

        try:
            parse_spec(settings.inject_503)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
    if settings.log_format not in LOG_FORMATS:
        raise SystemExit(f"error: log format {settings.log_format!r}: use text or json")
    if not settings.replica_id:
        settings = replace(settings, replica_id=f"{socket.gethostname()}:{settings.port}")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(settings.log_format)  # before anything that may warn
    key_file = settings.data_dir / SECRET_KEY_FILE
    if not settings.database_url.startswith("sqlite") and (
        key_file.is_file() and key_file.read_text().strip() == settings.secret_key
    ):
        logging.getLogger("pallet").warning(
            "the secret key is %s, this machine's own. Replicas sharing this database must all "
            "be given the same PALLET_SECRET_KEY, or a token made on one is refused by the "
            "others (docs/deploy.md).",
            key_file,
        )
    _migrate(settings)
    base = settings.base_url.rstrip("/") or (
        f"{'https' if settings.tls_certfile else 'http'}://{settings.host}:{settings.port}"
    )
    print(
        f"Pallet serving on {base}/\n"
        f"  simple index:  {base}/simple/\n"
        f"  upload URL:    {base}/legacy/   (twine --repository-url, uv publish --publish-url)\n"
        f"  data:          {settings.data_dir}\n"
        f"  upload token:  pallet token create --data-dir {settings.data_dir}",
        flush=True,
    )
    os.environ.update(settings.to_env())
    metrics_dir = _metrics_dir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # before prometheus_client loads
    try:
        if settings.workers <= 1:  # this process serves
            import uvicorn

            uvicorn.run(**_uvicorn_options(settings))
            return 0
        from pallet.cli.supervisor import Supervisor, bind

        with bind(settings.host, settings.port) as sock:
            return Supervisor(sock, settings.workers, _serve_worker).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _migrate(settings: Settings) -> None:
    """Create or upgrade the schema in a short-lived child process: Alembic (and SQLAlchemy
    with it) then never loads in this one, which with ``--workers N`` stays a small parent the
    workers are forked from (pallet.cli.supervisor). Exits as the migration failed."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child, which never returns from here
        code = 1
        try:
            migrated_engine(settings).dispose()
            code = 0
        except KeyboardInterrupt:
            code = 130
        except SystemExit as exc:
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - printed as the parent would have
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os._exit(code)
    while True:
        try:
            code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            break
        except KeyboardInterrupt:  # the child got it too: wait for it to go, then go
            os.waitpid(pid, 0)
            raise
    if code:
        raise SystemExit(code if code > 0 else 1)


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for one server process (the only one, or each worker)."""
    import uvicorn

    from pallet.connections import GuardedHttpToolsProtocol
    from pallet.logs import uvicorn_log_config

    return {
        "app": "pallet.cli.serve:asgi_app",
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "access_log": False,
        "log_level": "warning",
        "server_header": False,
        "http": GuardedHttpToolsProtocol,
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips or None,
        "h11_max_incomplete_event_size": 64 * 1024,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "ssl_certfile": settings.tls_certfile or None,
        "ssl_keyfile": settings.tls_keyfile or None,
        "log_config": uvicorn_log_config(settings.log_format) or uvicorn.config.LOGGING_CONFIG,
    }


def _serve_worker(sock: socket.socket, ready: Callable[[], None]) -> int:
    """One worker of ``--workers N``, in the process the supervisor forked: uvicorn on the
    shared socket. Its exit code: 0, or ``STARTUP_FAILURE`` if it never served."""
    import uvicorn

    from pallet.cli.supervisor import STARTUP_FAILURE
    from pallet.config import Settings

    class WorkerServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                ready()

    server = WorkerServer(uvicorn.Config(**_uvicorn_options(Settings.from_env())))
    try:
        server.run(sockets=[sock])
    except BaseException as exc:
        if server.started:
            raise
        if not isinstance(exc, SystemExit | KeyboardInterrupt):  # uvicorn logged the others
            traceback.print_exc()
    return 0 if server.started else STARTUP_FAILURE


METRICS_DIR_PREFIX = "pallet-metrics-"


def _metrics_dir() -> Path:
    """A fresh directory for this server's worker metrics (see pallet.telemetry), named after
    this process. Ones left by servers that died without cleaning up are removed first."""
    tmp = Path(tempfile.gettempdir())
    for old in tmp.glob(f"{METRICS_DIR_PREFIX}*-*"):
        pid = old.name.removeprefix(METRICS_DIR_PREFIX).split("-", 1)[0]
        if pid.isdigit() and old.is_dir() and not old.is_symlink() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def asgi_app():  # noqa: ANN201
    """Built in each worker from the ``PALLET_*`` environment."""
    from pallet.app import app_from_env
    from pallet.config import Settings
    from pallet.logs import AccessLog, configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_format)
    app = app_from_env()
    if not settings.access_log:
        return app
    return AccessLog(app, log_format=settings.log_format, replica=settings.replica_id)
