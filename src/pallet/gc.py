"""Garbage collection: expire sessions, drop what they staged, forget old terminal sessions.

Run by ``pallet gc`` and every ``PALLET_GC_INTERVAL`` seconds inside each server. Every step is
a conditional update or an idempotent delete, so several replicas may sweep at once.
"""

from __future__ import annotations

import logging
import shutil
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from pallet.core.sessions import FileState, SessionState
from pallet.db.models import File, FileUploadSession, UploadSession
from pallet.db.session import read_session, retrying
from pallet.services import Services
from pallet.storage import blob_key
from pallet.upload.v2 import sessions
from pallet.upload.v2.sessions import Purge

log = logging.getLogger("pallet.gc")
SPOOL_MAX_AGE = 24 * 3600


def _referenced(s: Session, sha256: str) -> bool:
    in_files = s.execute(
        select(File.id).where(or_(File.sha256 == sha256, File.metadata_sha256 == sha256)).limit(1)
    ).first()
    in_sessions = s.execute(
        select(FileUploadSession.id)
        .where(
            FileUploadSession.status.in_([FileState.COMPLETED, FileState.PROCESSING]),
            or_(FileUploadSession.sha256 == sha256, FileUploadSession.metadata_sha256 == sha256),
        )
        .limit(1)
    ).first()
    return in_files is not None or in_sessions is not None


def purge_blobs(svc: Services, purge: Purge) -> None:
    """Delete staged objects, and content blobs nothing refers to any more."""
    for key in purge.staged_keys:
        svc.store.delete(key)
    for key, upload_id in purge.multipart:
        abort = getattr(svc.store, "abort_multipart", None)
        if abort is not None:
            abort(key, upload_id)
        elif (path := svc.store.local_path(key)) is not None:
            shutil.rmtree(path.with_name(path.name + ".parts"), ignore_errors=True)
    for sha in sorted(set(purge.content_sha256)):
        with read_session(svc.engine) as s:
            if _referenced(s, sha):
                continue
        svc.store.delete(blob_key(sha))


def sweep(svc: Services) -> dict[str, int]:
    now = sessions.now()
    counts = {"sessions_expired": 0, "files_expired": 0, "sessions_forgotten": 0, "spool": 0}

    def expire_sessions(s: Session) -> Purge:
        purge = Purge([], [])
        due = s.execute(
            select(UploadSession).where(
                UploadSession.status.in_([SessionState.OPEN, SessionState.ERROR]),
                UploadSession.expires_at <= now,
            )
        ).scalars()
        for session in due:
            p = sessions.cancel(s, session, notice="The session expired and was canceled.")
            purge.staged_keys += p.staged_keys
            purge.content_sha256 += p.content_sha256
            purge.multipart += p.multipart
            counts["sessions_expired"] += 1
        return purge

    purge_blobs(svc, retrying(svc.engine, expire_sessions))

    def expire_files(s: Session) -> Purge:
        purge = Purge([], [])
        due = s.execute(
            select(FileUploadSession).where(
                FileUploadSession.status == FileState.PENDING,
                FileUploadSession.expires_at <= now,
            )
        ).scalars()
        for fs in due:
            sessions.purge_file(fs, purge)
            fs.status, fs.live_filename, fs.staged_key = FileState.CANCELED, None, None
            fs.notices = ["The file upload session expired."]
            counts["files_expired"] += 1
        return purge

    purge_blobs(svc, retrying(svc.engine, expire_files))

    def forget(s: Session) -> None:
        cutoff = now - timedelta(seconds=svc.settings.session_retention)
        old = (
            s.execute(
                select(UploadSession.id).where(
                    UploadSession.status.in_([SessionState.PUBLISHED, SessionState.CANCELED]),
                    UploadSession.finished <= cutoff,
                )
            )
            .scalars()
            .all()
        )
        if old:
            s.execute(delete(FileUploadSession).where(FileUploadSession.session_id.in_(old)))
            s.execute(delete(UploadSession).where(UploadSession.id.in_(old)))
        counts["sessions_forgotten"] = len(old)

    retrying(svc.engine, forget)
    counts["spool"] = _sweep_spool(svc.settings.tmp_dir)
    counts["abandoned_objects"] = _sweep_abandoned(svc)
    return counts


def _sweep_abandoned(svc: Services) -> int:
    """Objects clients PUT but never finalized (``uv publish --direct``), and multipart uploads
    no file session refers to any more (e.g. a creation that was retried), after a day."""
    cutoff = time.time() - SPOOL_MAX_AGE
    removed = 0
    lister = getattr(svc.store, "list_keys", None)
    if lister is not None:
        for key, modified in list(lister("direct")):
            if modified < cutoff:
                svc.store.delete(key)
                removed += 1
    stale = getattr(svc.store, "stale_multipart", None)
    if stale is not None:
        for key, upload_id in stale("staging", cutoff):
            with read_session(svc.engine) as s:
                live = s.execute(
                    select(FileUploadSession.id).where(
                        FileUploadSession.staged_key == key,
                        FileUploadSession.status == FileState.PENDING,
                    )
                ).first()
            if live is None:
                svc.store.abort_multipart(key, upload_id)
                removed += 1
    return removed


def _sweep_spool(tmp: Path) -> int:
    """Spool files left by a crashed process (live ones are younger than a day)."""
    removed = 0
    if tmp.is_dir():
        cutoff = time.time() - SPOOL_MAX_AGE
        for path in tmp.iterdir():
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


async def periodic(svc: Services) -> None:
    """The in-server sweep loop (cancelled on shutdown)."""
    import asyncio

    from starlette.concurrency import run_in_threadpool

    interval = svc.settings.gc_interval
    while interval > 0:
        await asyncio.sleep(interval)
        try:
            counts = await run_in_threadpool(sweep, svc)
            if any(counts.values()):
                log.info("gc: %s", counts)
        except Exception:  # noqa: BLE001 - the next sweep retries
            log.exception("gc sweep failed")
