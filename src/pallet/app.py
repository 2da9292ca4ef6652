"""``create_app(settings)``: wires the routers to the shared services."""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import asynccontextmanager

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from pallet import (
    __version__,
    connections,
    discovery,
    faults,
    http,
    metrics,
    openapi,
    outages,
    public_url,
)
from pallet.auth.oidc import routes as oidc
from pallet.config import Settings
from pallet.core.problems import Problem
from pallet.index import integrity, jsonapi, namespaces, stage
from pallet.index import routes as index_routes
from pallet.proxy import audit as proxy_audit
from pallet.services import Services
from pallet.upload import direct, legacy, signed_put
from pallet.upload.v2 import routes as upload2
from pallet.web import routes as web

log = logging.getLogger("pallet")


def _check_services(svc: Services) -> dict[str, str]:
    checks = {}
    try:
        with svc.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        svc.store.check()
        checks["storage"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["storage"] = f"error: {type(exc).__name__}"
    return checks


def _free_space(svc: Services) -> dict[str, str]:
    """Readiness beyond liveness: can this server take an upload now? A full disk keeps the
    process alive and reads working, but every upload would get 507."""
    checks = {}
    folders = {"spool": svc.settings.tmp_dir}
    blobs = svc.store.local_path("sha256")
    if blobs is not None:
        folders["storage"] = blobs.parent
    for name, folder in folders.items():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            st = os.statvfs(folder)
            free = st.f_bavail * st.f_frsize
            if free < svc.settings.min_free_space:
                checks[name] = f"error: {free} bytes free, under {svc.settings.min_free_space}"
                continue
            with tempfile.TemporaryFile(dir=folder) as probe:
                probe.write(b"ready")
                probe.flush()
                os.fsync(probe.fileno())
            checks[name] = "ok"
        except OSError as exc:
            checks[name] = f"error: {exc.strerror or type(exc).__name__}"
    return checks


async def ready(request: Request) -> Response:
    svc: Services = request.app.state.services
    checks = await run_in_threadpool(_check_services, svc)
    checks.update(await run_in_threadpool(_free_space, svc))
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503
    )


def _version(svc: Services) -> str:
    """A private index tells strangers nothing, not even which release to look up CVEs for."""
    return "" if svc.settings.private else __version__


async def health(request: Request) -> Response:
    """Liveness, and nothing more: a replica whose database is restarting is alive (it answers
    503 until the database is back). Were this to fail with the database, an orchestrator would
    restart every replica at once for an outage no restart fixes; ``/_/ready`` says whether to
    send traffic."""
    svc: Services = request.app.state.services
    body = {"status": "ok"}
    if _version(svc):  # a private index names neither its release nor its hosts to strangers
        body["version"] = _version(svc)
        if svc.settings.replica_id:
            body["replica"] = svc.settings.replica_id
    return JSONResponse(body)


def _middleware(settings: Settings) -> list[Middleware]:
    """Request metrics (outermost, so refusals below are counted too), the body-idle bound, the
    Host check (unless ``base_url`` fixes every URL), and the fault-injection test hook;
    an invalid ``inject_503`` SPEC fails here, at startup."""
    from pallet.telemetry import RequestMetrics  # loads prometheus_client: see pallet.telemetry

    stack = [
        Middleware(RequestMetrics),
        Middleware(connections.BodyIdleTimeout, seconds=settings.body_idle_timeout),
    ]
    if not settings.base_url:
        stack.append(Middleware(public_url.HostCheck, patterns=public_url.allowed_hosts(settings)))
    if settings.inject_503:
        spec = faults.parse_spec(settings.inject_503)
        stack.append(
            Middleware(faults.FaultInjection, faults=spec, upload_root=settings.upload_root)
        )
    return stack


def _test_routes(settings: Settings) -> list[Route]:
    """The forced-expiry test hook (pallet.testhooks), only when ``test_hooks`` is on."""
    if not settings.test_hooks:
        return []
    from pallet import testhooks

    return testhooks.routes


def create_app(settings: Settings | None = None, services: Services | None = None) -> Starlette:
    services = services or Services.from_settings(settings or Settings.from_env())

    @asynccontextmanager
    async def lifespan(app: Starlette):  # noqa: ANN202
        import asyncio

        from pallet.duties import periodic

        sweeper = asyncio.create_task(periodic(services))
        try:
            yield
        finally:
            sweeper.cancel()
            services.close()

    app = Starlette(
        routes=[
            Route("/_/health", health, methods=["GET", "HEAD"]),
            Route("/_/ready", ready, methods=["GET", "HEAD"]),
            *metrics.routes,
            *web.routes,
            *index_routes.routes,
            *namespaces.routes,
            *proxy_audit.routes,
            *jsonapi.routes,
            *integrity.routes,
            *stage.routes,
            *signed_put.routes,
            *upload2.routes(services.settings.upload_root),
            *direct.routes,
            *discovery.routes,
            *openapi.routes,
            *legacy.routes,
            *oidc.routes,
            *_test_routes(services.settings),
        ],
        exception_handlers={
            Problem: http.handle_problem,
            HTTPException: http.handle_http_exception,
            ClientDisconnect: http.handle_disconnect,
            Exception: http.handle_unexpected,
        },
        # Outages innermost: every middleware outside it sees a 503/507 response, not an error.
        middleware=[
            *_middleware(services.settings),
            Middleware(outages.Outages, services=services),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    return app


def app_from_env() -> ASGIApp:
    """Factory for the server's worker processes: settings travel through ``PALLET_*``
    variables. Cached public simple pages are answered by ``FastPages`` in front of the app
    (the same bytes and headers, without the middleware stack); the rest goes to the app."""
    from pallet.index.fast import FastPages

    services = Services.from_settings(Settings.from_env())
    return FastPages(create_app(services=services), services)
