"""Test hooks (``PALLET_TEST_HOOKS=1``, ``pallet serve --test-hooks``): never for production.
Forced expiry, and a gate that holds deferred processing until the test releases it.

Tests of expiry must not race the wall clock: a session given a two-second lifetime expires
early or late on a loaded machine. Instead a test opens a session with the normal lifetime and
ends it on cue: ``POST /_/test/expire`` with ``{"session": SID}`` moves that publishing
session's ``expires-at`` one second into the past, ``{"session": SID, "file": FID}`` does the
same to one of its file-upload sessions. Nothing else changes, so the server then treats it
exactly as one whose time ran out: canceled on its next request or by the sweep (in this server
or ``pallet gc``). Answers ``204``; the caller needs an upload token for the session's project,
like any request to the session. Without the setting the route does not exist (``404``).

``{"session": SID, "leases": true}`` instead lapses the leases of that session's deferred work
(its publish, its files' verifications), as if the replica doing it had died ``TTL`` seconds
ago: the next replica to look for work left behind takes it over (pallet.upload.v2.deferred).
"""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pallet.auth.guard import require_uploader
from pallet.core.problems import Problem
from pallet.core.untrusted import JsonLimits, load_json
from pallet.db import leases
from pallet.db.models import FileUploadSession, UploadSession
from pallet.db.session import retrying
from pallet.services import Services
from pallet.upload.v2 import sessions

PATH = "/_/test/expire"
RELEASE_PATH = "/_/test/release-processing"

# Deferred work (a 202 ``complete`` or ``publish``) waits here when ``processing_delay`` is set,
# for at most that many seconds, until a test has seen the ``processing`` state and releases it:
# the state lasts exactly as long as the test needs, however loaded the machine.
_gate = threading.Condition()
_generation = 0
_waiting = 0


def hold_processing(seconds: float) -> None:
    global _waiting
    if seconds <= 0:
        return
    with _gate:
        start = _generation
        _waiting += 1
        try:
            _gate.wait_for(lambda: _generation > start, timeout=seconds)
        finally:
            _waiting -= 1


def release_processing() -> int:
    """Let every held task go on; returns how many there were (0: none has arrived yet, and
    the caller asks again, instead of releasing a task that has not started waiting)."""
    global _generation
    with _gate:
        released = _waiting
        if released:
            _generation += 1
            _gate.notify_all()
        return released
_BODY = JsonLimits(depth=2, string=128, number=16)


def _bad(detail: str) -> Problem:
    return Problem(400, "invalid-request", "Invalid request", detail)


async def expire(request: Request) -> Response:
    svc: Services = request.app.state.services
    principal = await run_in_threadpool(require_uploader, svc, request)
    raw = await request.body()
    if len(raw) > 4096:
        raise _bad("The body is a small JSON object.")
    try:
        body = load_json(raw, _BODY)
    except ValueError:
        raise _bad('Send {"session": SID} or {"session": SID, "file": FID}.') from None
    sid, fid = (body.get("session"), body.get("file")) if isinstance(body, dict) else (None, None)
    if not isinstance(sid, str) or not (fid is None or isinstance(fid, str)):
        raise _bad('Send {"session": SID} or {"session": SID, "file": FID}.')
    lapse = isinstance(body, dict) and body.get("leases") is True

    def work(s: Session) -> None:
        session = s.execute(
            select(UploadSession).where(UploadSession.id == sid)
        ).scalar_one_or_none()
        if session is None:
            raise sessions.not_found()
        sessions.authorize(principal, session.normalized_name)
        if lapse:
            leases.expire(s, leases.publish(sid))
            for held in sessions.files_of(s, session):
                leases.expire(s, leases.verification(held.id))
            return
        past = sessions.now() - timedelta(seconds=1)
        if fid is None:
            session.expires_at = past
            return
        fs = s.execute(
            select(FileUploadSession).where(
                FileUploadSession.id == fid, FileUploadSession.session_id == sid
            )
        ).scalar_one_or_none()
        if fs is None:
            raise sessions.not_found()
        fs.expires_at = past

    await run_in_threadpool(retrying, svc.engine, work)
    return Response(status_code=204)


async def release(request: Request) -> Response:
    svc: Services = request.app.state.services
    await run_in_threadpool(require_uploader, svc, request)
    return JSONResponse({"released": release_processing()})


routes = [Route(PATH, expire, methods=["POST"]), Route(RELEASE_PATH, release, methods=["POST"])]
