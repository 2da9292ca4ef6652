"""HTTP plumbing shared by every router: problem responses and exception handlers.

Any exception that escapes a handler becomes an RFC 9457 document; unexpected ones are logged
with a traceback and answered 500 without internals, but the aim is that none ever reach it.
"""

from __future__ import annotations

import errno
import json
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from pallet.core.problems import PROBLEM_MEDIA_TYPE, Problem

log = logging.getLogger("pallet")

_STATUS_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "too-large",
    415: "unsupported-media-type",
}


def problem_response(problem: Problem, meta: dict[str, Any] | None = None) -> Response:
    body = problem.to_dict()
    if meta is not None:  # Upload 2.0: meta and errors[] on every problem (PEP 694)
        body["meta"] = meta
        body.setdefault("errors", [])
    return Response(
        json.dumps(body),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


async def handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc, getattr(request.state, "problem_meta", None))


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else ""
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}."
        if request.method == "POST" and request.url.path.startswith("/simple"):
            detail += " Uploads go to /legacy/ (this is the simple index URL)."
    problem = Problem(
        exc.status_code,
        _STATUS_SLUGS.get(exc.status_code, "http-error"),
        detail or "Error",
        detail,
        headers=dict(exc.headers or {}),
    )
    if exc.status_code == 404:
        problem.title = "Not found"
        problem.detail = f"Nothing at {request.url.path}."
    return problem_response(problem, getattr(request.state, "problem_meta", None))


async def handle_disconnect(request: Request, exc: Exception) -> Response:
    """The client went away mid-body (a killed or canceled upload). The endpoint's spool was
    aborted, so nothing was stored; nobody is left to read an answer, and it is no server error."""
    log.info("client disconnected during %s %s", request.method, request.url.path)
    return Response(status_code=400)


def storage_full(exc: BaseException) -> bool:
    """A full disk or quota, raised by a write or by SQLite, however deep it was wrapped."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(seen):
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False


def insufficient_storage() -> Problem:
    return Problem(
        507,
        "insufficient-storage",
        "Insufficient storage",
        "The index's storage is full; nothing of this upload was kept. Retrying will not help "
        "until an operator frees space.",
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        Problem(500, "internal-error", "Internal server error", "The error has been logged.")
    )


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison for ``If-None-Match``: any listed tag, ``W/`` or not, or
    ``*``. A CDN that compresses a page weakens its ETag, and must still get its 304."""
    if not if_none_match:
        return False
    strong = etag.removeprefix("W/")
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == strong:
            return True
    return False

