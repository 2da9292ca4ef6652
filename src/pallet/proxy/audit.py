"""The proxy's audit log over HTTP: ``GET /_/proxy/audit``, newest first, as
``pallet proxy-audit --json`` prints it.

It always needs a token, public index or not: what an organisation fetched from upstream is a
list of its dependencies. A token that covers every project reads the whole log; one limited to
some projects reads their entries only.
"""

from __future__ import annotations

from typing import Any

from packaging.utils import canonicalize_name
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pallet.auth.guard import authenticate, unauthorized
from pallet.core.problems import Problem
from pallet.db import audit
from pallet.db.models import ProxyAudit
from pallet.db.session import read_session
from pallet.services import Services

MAX_LIMIT = 1000


def entry(row: ProxyAudit) -> dict[str, Any]:
    """One entry as JSON, the same for the CLI and the HTTP API."""
    return {"id": row.id, "at": row.at.isoformat(), "project": row.project,
            "upstream": row.upstream, "kind": row.kind, "url": row.url, "sha256": row.sha256,
            "decision": row.decision, "outcome": row.outcome}  # fmt: skip


def _int(raw: str | None, name: str, default: int | None, low: int, high: int) -> int | None:
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise Problem(400, "invalid-parameter", "Invalid parameter",
                      f"{name} must be an integer from {low} to {high}.")  # fmt: skip
    return int(raw)


def _read(svc: Services, request: Request) -> dict[str, Any]:
    raw_project = request.query_params.get("project")
    project = canonicalize_name(raw_project) if raw_project else None
    limit = _int(request.query_params.get("limit"), "limit", 100, 1, MAX_LIMIT)
    before = _int(request.query_params.get("before"), "before", None, 1, 2**62)
    with read_session(svc.engine) as s:
        principal = authenticate(svc, request, s)
        if principal is None:
            raise unauthorized("The proxy's audit log needs an API token.")
        if not principal.can_read(project):
            raise Problem(403, "forbidden", "Not allowed",
                          f"This token cannot read project {project!r}.")  # fmt: skip
        rows = audit.recent(s, project=project, limit=limit or 100, before=before,
                            within=principal.projects)  # fmt: skip
        entries = [entry(r) for r in rows]
    return {"entries": entries, "before": entries[-1]["id"] if entries else None}


async def audit_log(request: Request) -> Response:
    svc: Services = request.app.state.services
    body = await run_in_threadpool(_read, svc, request)
    return JSONResponse(body, headers={"Cache-Control": "private, no-store"})


routes = [Route("/_/proxy/audit", audit_log, methods=["GET", "HEAD"])]
