"""The proxy's audit log over HTTP: ``GET /_/proxy/audit``, newest first, as
``pallet proxy-audit --json`` prints it.

It always needs a token, public index or not: what an organisation fetched from upstream is a
list of its dependencies. A token that covers every project reads the whole log; one limited to
some projects reads their entries only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packaging.utils import InvalidName, canonicalize_name
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pallet.auth.guard import authenticate, unauthorized
from pallet.auth.tokens import Principal
from pallet.core.problems import Problem
from pallet.db import audit
from pallet.db.models import ProxyAudit
from pallet.db.session import read_session
from pallet.services import Services

MAX_LIMIT = 1000
PAGE = 100


def entry(row: ProxyAudit) -> dict[str, Any]:
    """One entry as JSON, the same for the CLI and the HTTP API."""
    return {"id": row.id, "at": row.at.isoformat(), "project": row.project,
            "upstream": row.upstream, "kind": row.kind, "url": row.url, "sha256": row.sha256,
            "decision": row.decision, "outcome": row.outcome}  # fmt: skip


@dataclass(frozen=True)
class Query:
    """``?project=&limit=&before=``, as the JSON API and the web page take them."""

    project: str | None
    limit: int
    before: int | None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Query:
        raw_project = params.get("project")
        return cls(
            _project(raw_project) if raw_project else None,
            _int(params, "limit", 1, MAX_LIMIT) or PAGE,
            _int(params, "before", 1, 2**62),  # an id: within the database's BIGINT
        )

    def read(self, s: Session, principal: Principal) -> list[ProxyAudit]:
        """The entries ``principal`` may read: 403 for a project its token does not cover, and
        only its projects' entries for a token limited to some."""
        if not principal.can_read(self.project):
            raise Problem(403, "forbidden", "Not allowed",
                          f"This token cannot read project {self.project!r}.")  # fmt: skip
        return audit.recent(s, project=self.project, limit=self.limit, before=self.before,
                            within=principal.projects)  # fmt: skip

    def older(self, rows: list[ProxyAudit]) -> int | None:
        """``before`` for the next page, when this one was full."""
        return rows[-1].id if len(rows) == self.limit else None


def _project(raw: str) -> str:
    try:
        return canonicalize_name(raw, validate=True)
    except InvalidName:
        raise Problem(400, "invalid-parameter", "Invalid parameter",
                      "project must be a project name (PEP 508).") from None  # fmt: skip


def _int(params: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise Problem(400, "invalid-parameter", "Invalid parameter",
                      f"{name} must be an integer from {low} to {high}.")  # fmt: skip
    return int(raw)


def _read(svc: Services, request: Request) -> dict[str, Any]:
    query = Query.parse(request.query_params)
    with read_session(svc.engine) as s:
        principal = authenticate(svc, request, s)
        if principal is None:
            raise unauthorized("The proxy's audit log needs an API token.")
        rows = query.read(s, principal)
        return {"entries": [entry(r) for r in rows], "before": query.older(rows)}


async def audit_log(request: Request) -> Response:
    svc: Services = request.app.state.services
    body = await run_in_threadpool(_read, svc, request)
    return JSONResponse(body, headers={"Cache-Control": "private, no-store"})


routes = [Route("/_/proxy/audit", audit_log, methods=["GET", "HEAD"])]
