"""Publish: the session's completed files become visible together, or none does.

Synchronous publish is one transaction: insert the file rows (the unique filename constraint is
the atomic namespace check, shared with legacy uploads), lift a first-release name reservation,
journal the change. Deferred publish (``PALLET_DEFERRED_PUBLISH=1``) inserts the rows unpublished
first — reserving the filenames, so concurrent uploads of them get 409 — answers 202, and flips
them visible in a second transaction.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from pallet import testhooks
from pallet.core.problems import Problem, ProblemError
from pallet.core.sessions import (
    PUBLISHABLE_FILE_STATE,
    FileState,
    SessionEvent,
    SessionState,
    next_session_state,
)
from pallet.db import journal, leases, search
from pallet.db.models import File, FileUploadSession, Project, UploadSession
from pallet.db.session import retrying
from pallet.outages import outage
from pallet.services import Services
from pallet.upload.publish import FileFacts, get_or_create_release, insert_file
from pallet.upload.v2 import sessions
from pallet.upload.v2.bodies import session_body

if TYPE_CHECKING:
    from pallet.upload.v2.context import Ctx

_background: set[asyncio.Task] = set()
log = logging.getLogger("pallet.upload")


def _facts(fs: FileUploadSession, version: str) -> FileFacts:
    return FileFacts(
        filename=fs.filename,
        version=version,
        size=fs.size,
        sha256=fs.sha256 or "",
        blake2_256=fs.blake2_256,
        md5=fs.md5,
        packagetype=fs.packagetype or "",
        python_version=fs.python_version or "",
        requires_python=fs.requires_python,
        metadata_sha256=fs.metadata_sha256,
        info=fs.info or {},
        attestations=fs.attestations,
        publisher=fs.publisher,
    )


def _check_publishable(s: Session, live: list[FileUploadSession]) -> None:
    blocked = [f for f in live if f.status != PUBLISHABLE_FILE_STATE]
    if blocked:
        raise Problem(
            409,
            "files-not-completed",
            "Session has files that are not completed",
            "Publishing requires every file in the session to be 'completed'.",
            errors=[ProblemError(f"files/{f.filename}", f"state is '{f.status}'") for f in blocked],
        )
    names = [f.filename for f in live]
    taken = s.execute(select(File.filename).where(File.filename.in_(names))).scalars().all()
    if taken:
        raise Problem(
            409,
            "file-exists",
            "File already exists",
            "Some filenames are already published (or being published) in this release.",
            errors=[ProblemError(f"files/{n}", "already exists") for n in sorted(taken)],
        )


def publish(svc: Services, ctx: Ctx, deferred: bool) -> dict:
    def work(s: Session) -> dict:
        session, _ = sessions.load(s, ctx.sid, ctx.principal, for_update=True)
        event = SessionEvent.PUBLISH_DEFERRED if deferred else SessionEvent.PUBLISH_DONE
        target = next_session_state(session.status, event)
        every = sessions.files_of(s, session)
        live = [f for f in every if f.status != FileState.CANCELED]
        _check_publishable(s, live)
        project = s.execute(
            select(Project).where(Project.normalized_name == session.normalized_name)
        ).scalar_one()
        if live:
            version = session.version
            release = get_or_create_release(s, project, _facts(live[0], version))
            for fs in live:
                insert_file(
                    s,
                    release,
                    _facts(fs, version),
                    via=f"upload-2.0:{fs.mechanism}",
                    published=not deferred,
                )
        session.status = target
        if deferred:  # owned from this transaction on: no replica sees it unowned
            leases.take_in(s, leases.publish(session.id))
        else:
            _make_visible(s, session, project, live)
        return session_body(ctx.links, session, every)

    return retrying(svc.engine, work, durable=True)


def _make_visible(
    s: Session, session: UploadSession, project: Project, live: list[FileUploadSession]
) -> None:
    if project.reserved_by == session.id:
        project.reserved_by = None
    session.live_key = None
    session.finished = sessions.now()
    names = ", ".join(f.filename for f in live) or "no files (name registration)"
    journal.record(s, project, f"publish {session.version}: {names}")
    search.refresh(s, project)


def finish_deferred(svc: Services, sid: str) -> None:
    """Second half of a deferred publish, holding its lease (taken already): flip the reserved
    rows visible, or roll back. Idempotent: a session no longer ``processing`` is left alone."""
    with svc.leases.holding(leases.publish(sid)):
        _finish_deferred(svc, sid)


def _finish_deferred(svc: Services, sid: str) -> None:
    if svc.settings.processing_delay:
        testhooks.hold_processing(svc.settings.processing_delay)

    def work(s: Session) -> None:
        session = s.get(UploadSession, sid, with_for_update=True)
        if session is None or session.status != SessionState.PROCESSING:
            return
        live = [f for f in sessions.files_of(s, session) if f.status != FileState.CANCELED]
        names = [f.filename for f in live]
        if names:
            s.execute(update(File).where(File.filename.in_(names)).values(published=True))
        project = s.execute(
            select(Project).where(Project.normalized_name == session.normalized_name)
        ).scalar_one()
        session.status = next_session_state(session.status, SessionEvent.PROCESSING_SUCCEEDED)
        _make_visible(s, session, project, live)

    try:
        retrying(svc.engine, work, durable=True)
    except Exception as exc:
        if outage(exc, svc):
            raise  # still `processing`: once the lease is free, this or another replica retries
        # Anything else is recorded on the session, as PEP 694 asks.
        fail_deferred(svc, sid, f"Publishing failed: {type(exc).__name__}")


def fail_deferred(svc: Services, sid: str, notice: str) -> None:
    def work(s: Session) -> None:
        session = s.get(UploadSession, sid, with_for_update=True)
        if session is None or session.status != SessionState.PROCESSING:
            return
        live = [f.filename for f in sessions.files_of(s, session)]
        s.execute(
            delete(File).where(File.filename.in_(live), File.published.is_(False)),
            execution_options={"synchronize_session": False},  # a plain DELETE, as on the table
        )
        session.status = next_session_state(session.status, SessionEvent.PROCESSING_FAILED)
        session.notices = [*(session.notices or []), notice]

    retrying(svc.engine, work)


def start_deferred(svc: Services, sid: str) -> None:
    task = asyncio.create_task(run_in_threadpool(finish_deferred, svc, sid))
    _background.add(task)
    task.add_done_callback(_done)


def _done(task: asyncio.Task) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("deferred publish interrupted (%s); it will be retried", task.exception())
