"""Publishing and cancelling a publishing session for a principal: what the PEP 694 endpoints
and the web UI's Publish and Cancel buttons both do, written once."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from pallet.auth.tokens import Principal
from pallet.core.problems import Problem
from pallet.db import session as db
from pallet.services import Services
from pallet.upload.v2 import publishing, sessions
from pallet.upload.v2.context import Ctx, JSONish, links_for, purge_after
from pallet.upload.v2.sessions import Purge


async def publish(svc: Services, request: Request, principal: Principal, sid: str) -> JSONish:
    """The session's body after publishing (``processing`` when deferred: the work is started)."""
    ctx = Ctx(svc, principal, links_for(request, svc), sid)
    try:
        body = await run_in_threadpool(publishing.publish, svc, ctx, svc.settings.deferred_publish)
    except IntegrityError:
        raise Problem(
            409,
            "file-exists",
            "File already exists",
            "Another upload published one of these filenames at the same moment; "
            "nothing from this session was published.",
        ) from None
    if body["status"] == "processing":
        publishing.start_deferred(svc, sid)
    return body


async def cancel(svc: Services, principal: Principal, sid: str) -> None:
    def work(s: Session) -> Purge:
        session, _ = sessions.load(s, sid, principal, for_update=True)
        return sessions.cancel(s, session)

    await purge_after(svc, await db.write(svc.engine, work))
