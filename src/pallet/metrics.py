"""``GET /_/metrics`` in Prometheus text format.

Two kinds of figures. What the index holds (files and bytes published per upload path and
mechanism, publishing and file-upload sessions by state) is counted from the database rather
than process memory, so every replica reports the same totals and restarts lose nothing. What
this server did (requests per route, their latency, GC sweeps) comes from its processes
(pallet.telemetry), summed over its workers; ``pallet_replica_info`` says which replica that is.
"""

from __future__ import annotations

import hmac
import socket

from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from pallet import __version__, telemetry
from pallet.auth.credentials import token_from_authorization
from pallet.auth.guard import authenticate, unauthorized
from pallet.config import Settings
from pallet.core.problems import Problem
from pallet.core.sessions import SessionState
from pallet.db.models import File, FileUploadSession, UploadSession
from pallet.db.session import read_session
from pallet.services import Services


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def replica_id(settings: Settings) -> str:
    """``replica_id``, else ``<hostname>:<port>`` (``pallet serve`` fills it in the same way)."""
    return settings.replica_id or f"{socket.gethostname()}:{settings.port}"


def render(svc: Services) -> str:
    with read_session(svc.engine) as s:
        files = s.execute(
            select(File.uploaded_via, func.count(), func.coalesce(func.sum(File.size), 0))
            .where(File.published.is_(True))
            .group_by(File.uploaded_via)
        ).all()
        publishing = dict.fromkeys(map(str, SessionState), 0)
        for status, n in s.execute(
            select(UploadSession.status, func.count()).group_by(UploadSession.status)
        ):
            publishing[status] = n
        sessions = s.execute(
            select(FileUploadSession.mechanism, FileUploadSession.status, func.count()).group_by(
                FileUploadSession.mechanism, FileUploadSession.status
            )
        ).all()
    lines = [
        "# HELP pallet_published_files_total Files published, by upload path and mechanism.",
        "# TYPE pallet_published_files_total counter",
        *(f'pallet_published_files_total{{via="{_label(v)}"}} {n}' for v, n, _ in files),
        "# HELP pallet_published_bytes_total Bytes published, by upload path and mechanism.",
        "# TYPE pallet_published_bytes_total counter",
        *(f'pallet_published_bytes_total{{via="{_label(v)}"}} {b}' for v, _, b in files),
        "# HELP pallet_upload_sessions Upload 2.0 publishing sessions by state (terminal ones"
        " until they are forgotten).",
        "# TYPE pallet_upload_sessions gauge",
        *(f'pallet_upload_sessions{{status="{_label(st)}"}} {n}' for st, n in publishing.items()),
        "# HELP pallet_file_upload_sessions Upload 2.0 file-upload sessions by mechanism, state.",
        "# TYPE pallet_file_upload_sessions gauge",
        *(
            f'pallet_file_upload_sessions{{mechanism="{_label(m)}",status="{_label(st)}"}} {n}'
            for m, st, n in sessions
        ),
        "# HELP pallet_replica_info The replica answering, and its version (empty when private).",
        "# TYPE pallet_replica_info gauge",
        f'pallet_replica_info{{replica="{_label(replica_id(svc.settings))}",'
        f'version="{_label(_version(svc.settings))}"}} 1',
    ]
    return "\n".join(lines) + "\n" + telemetry.exposition()


def _version(settings: Settings) -> str:
    """As app.py: a private index tells strangers nothing, not even its release."""
    return "" if settings.private else __version__


def authorize(svc: Services, request: Request) -> None:
    """Public on a public index without a scrape credential. Otherwise the configured scrape
    credential (``PALLET_METRICS_TOKEN``, as a Bearer token or a Basic password), or a read
    token for the whole index: the totals span every project."""
    settings = svc.settings
    if not (settings.private or settings.metrics_token):
        return
    presented = token_from_authorization(request.headers.get("authorization"))
    if settings.metrics_token and presented is not None:
        if hmac.compare_digest(presented.encode(), settings.metrics_token.encode()):
            return
    principal = authenticate(svc, request)
    if principal is None:
        raise unauthorized(
            "Metrics need the scrape credential (PALLET_METRICS_TOKEN) or a read token."
        )
    if principal.projects is not None:
        raise Problem(
            403, "forbidden", "Not allowed", "Metrics need a token that can read every project."
        )


async def metrics(request: Request) -> Response:
    svc: Services = request.app.state.services
    await run_in_threadpool(authorize, svc, request)
    body = await run_in_threadpool(render, svc)
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4")


routes = [Route("/_/metrics", metrics, methods=["GET"])]
