"""What every Upload 2.0 endpoint starts from: content negotiation, the caller's token, and the
publishing (and file-upload) session loaded and authorised, as a ``Ctx``.

Mechanisms get the same ``Ctx`` for their own endpoints, seen through the small
``pallet.upload.mechanisms.base.FileContext`` interface, so they never import this package.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from pallet.auth.guard import require_uploader
from pallet.auth.tokens import Principal
from pallet.core import upload2
from pallet.core.problems import Problem
from pallet.db import session as db
from pallet.db.models import FileUploadSession, UploadSession
from pallet.db.session import retrying, write_session
from pallet.public_url import base_url
from pallet.services import Services
from pallet.upload.links import Links
from pallet.upload.spool import SpooledFile
from pallet.upload.v2 import files, sessions
from pallet.upload.v2.sessions import Purge

JSONish = dict[str, Any]


def v2_response(
    body: JSONish, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body), status_code=status, media_type=upload2.MEDIA_TYPE, headers=headers
    )


def links_for(request: Request, svc: Services) -> Links:
    return Links(base_url(request), svc.settings.upload_root)


def negotiate(request: Request) -> Services:
    """Every Upload 2.0 endpoint's first step, before any I/O: problems in the v2 shape, and
    406 for a client that does not accept the v2 media type."""
    request.state.problem_meta = upload2.META
    if not upload2.accepts_v2(request.headers.get("accept")):
        raise Problem(
            406, "not-acceptable", "Not acceptable", f"This endpoint speaks {upload2.MEDIA_TYPE}."
        )
    return request.app.state.services


def purge(svc: Services, what: Purge | None) -> None:
    """Delete what a committed transaction orphaned (staged objects, unreferenced blobs)."""
    if what is not None:
        from pallet.gc import purge_blobs

        purge_blobs(svc, what)


async def purge_after(svc: Services, what: Purge | None) -> None:
    """``purge`` on a worker thread, when there is anything to purge (most requests: nothing,
    and then no thread hop)."""
    if what is not None:
        await run_in_threadpool(purge, svc, what)


@dataclass
class Ctx:
    svc: Services
    principal: Principal
    links: Links
    sid: str
    fid: str | None = None
    session: UploadSession | None = None
    file: FileUploadSession | None = None

    def update_file(self, change: Callable[[FileUploadSession], None]) -> None:
        """Apply ``change`` to this file in a write transaction, while it still takes bytes
        (a pending file of an editable session, re-checked under the caller's token)."""

        def work(s: Session) -> None:
            session, _ = sessions.load(s, self.sid, self.principal)
            fs = files.load(s, session, self.fid or "")
            files.check_transfer(session, fs)
            change(fs)

        retrying(self.svc.engine, work)

    def store_received(self, spooled: SpooledFile, key: str) -> None:
        """Stage received bytes for this (still pending) file; replaces earlier bytes."""

        def work(s: Session) -> str | None:
            session, _ = sessions.load(s, self.sid, self.principal)
            fs = files.load(s, session, self.fid or "")
            files.check_transfer(session, fs)
            previous = fs.staged_key
            # Not flushed here: ``complete`` stores the bytes durably at their content address
            # before the file can count as completed.
            self.svc.store.put_file(key, spooled.path, durable=False)
            fs.staged_key = key
            fs.received_size = spooled.digests.size
            fs.mechanism_state = {"digests": spooled.digests.as_dict()}
            return previous if previous != key else None

        with write_session(self.svc.engine) as s:
            stale = work(s)
        if stale:
            self.svc.store.delete(stale)


Handler = Callable[[Request, Services, Ctx], Awaitable[Response]]


_ID = re.compile(r"[0-9a-f]{1,64}")


def session_endpoint(handler: Handler, *, with_file: bool = False) -> Callable:
    """Negotiate, then authenticate and load the session (and file) in one read transaction.
    Only an expired session needs a write (its expiry cancels it): that rare case takes a
    second, write transaction. Handlers re-load under their own write lock when they change
    anything; this first load is what they may answer from or stream against."""

    async def endpoint(request: Request) -> Response:
        svc = negotiate(request)
        sid, fid = request.path_params["sid"], request.path_params.get("fid")

        def load(s: Session) -> Ctx:
            principal = require_uploader(svc, request, s)
            if not all(_ID.fullmatch(i) for i in (sid, fid or "0")):
                raise sessions.not_found()  # ids are ours: hex, never a NUL for SQL
            ctx = Ctx(svc, principal, links_for(request, svc), sid, fid)
            ctx.session = sessions.load_current(s, sid, principal)
            if with_file and ctx.session is not None:
                ctx.file = files.load(s, ctx.session, fid or "")
            return ctx

        ctx = await db.read(svc.engine, load)
        if ctx.session is None:

            def expire(s: Session) -> Purge | None:
                ctx.session, expired = sessions.load(s, sid, ctx.principal)
                if with_file:
                    ctx.file = files.load(s, ctx.session, fid or "")
                return expired

            await purge_after(svc, await db.write(svc.engine, expire))
        return await handler(request, svc, ctx)

    return endpoint


def file_endpoint(handler: Handler) -> Callable:
    return session_endpoint(handler, with_file=True)
