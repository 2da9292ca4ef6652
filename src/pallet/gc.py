"""Garbage collection: expire sessions, drop what they staged, forget old terminal sessions, and
collect what crashes and late clients leave in the blob store.

Run by ``pallet gc`` and every ``PALLET_GC_INTERVAL`` seconds inside each server (pallet.duties),
by one process at a time: the sweep holds a lease. Each step is still a conditional update or an
idempotent delete, and rows a request holds are skipped until the next sweep.

The blob store's share (orphans, the trash, staged leftovers, spool files) is
``pallet.leftovers``; ``pallet fsck`` reports the same leftovers.
"""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pallet.core.sessions import FileState, SessionState
from pallet.db import leases, search
from pallet.db.models import FileUploadSession, UploadSession, UsedOidcToken
from pallet.db.session import read_session, retrying
from pallet.leftovers import (
    collect_storage,
    cutoff_for,
    is_referenced,
    sweep_abandoned,
    sweep_spool,
)
from pallet.proxy.eviction import evict
from pallet.services import Services
from pallet.storage import blob_key
from pallet.storage.base import ListsMultipart
from pallet.upload.v2 import sessions
from pallet.upload.v2.sessions import Purge

log = logging.getLogger("pallet.gc")


def purge_blobs(svc: Services, purge: Purge) -> None:
    """Delete staged objects, and content blobs nothing refers to any more."""
    for key in purge.staged_keys:
        svc.store.delete(key)
    for key, upload_id in purge.multipart:
        if isinstance(svc.store, ListsMultipart):
            svc.store.abort_multipart(key, upload_id)
        elif (path := svc.store.local_path(key)) is not None:
            shutil.rmtree(path.with_name(path.name + ".parts"), ignore_errors=True)
    for sha in sorted(set(purge.content_sha256)):
        with read_session(svc.engine) as s:
            if is_referenced(s, sha):
                continue
        svc.store.delete(blob_key(sha))


def sweep(svc: Services, *, grace: int | None = None, scan: bool = True) -> dict[str, int]:
    """One pass of every step. ``grace`` overrides ``PALLET_GC_GRACE``; ``scan=False`` skips
    listing the content store for orphans (the periodic sweep does that only hourly)."""
    now = sessions.now()
    grace = svc.settings.gc_grace if grace is None else grace
    cutoff = cutoff_for(grace)
    counts = {"sessions_expired": 0, "files_expired": 0, "sessions_forgotten": 0, "spool": 0}

    def expire_sessions(s: Session) -> Purge:
        purge = Purge([], [])
        due = s.execute(
            select(UploadSession)
            .where(
                UploadSession.status.in_([SessionState.OPEN, SessionState.ERROR]),
                UploadSession.expires_at <= now,
            )
            .with_for_update(skip_locked=True)
        ).scalars()
        for session in due:
            p = sessions.cancel(s, session, notice=sessions.EXPIRED)
            purge.staged_keys += p.staged_keys
            purge.content_sha256 += p.content_sha256
            purge.multipart += p.multipart
            counts["sessions_expired"] += 1
        return purge

    purge_blobs(svc, retrying(svc.engine, expire_sessions))

    def expire_files(s: Session) -> Purge:
        purge = Purge([], [])
        due = s.execute(
            select(FileUploadSession)
            .where(
                FileUploadSession.status == FileState.PENDING,
                FileUploadSession.expires_at <= now,
            )
            .with_for_update(skip_locked=True)
        ).scalars()
        for fs in due:
            sessions.purge_file(fs, purge)
            fs.status, fs.live_filename, fs.staged_key = FileState.CANCELED, None, None
            fs.notices = ["The file upload session expired."]
            counts["files_expired"] += 1
        return purge

    purge_blobs(svc, retrying(svc.engine, expire_files))
    counts["files_freed"] = _free_closed_files(svc)

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

    def forget_oidc_ids(s: Session) -> None:
        # A jti only needs remembering while its token could still be accepted.
        gone = s.execute(delete(UsedOidcToken).where(UsedOidcToken.expires_at <= now))
        counts["oidc_ids_forgotten"] = gone.rowcount or 0  # type: ignore[attr-defined]

    retrying(svc.engine, forget_oidc_ids)
    counts["search_rows"] = retrying(svc.engine, search.refresh_missing)
    counts["proxied_evicted"] = evict(svc, is_referenced)
    counts["spool"] = sweep_spool(svc.settings.tmp_dir, cutoff)
    counts["abandoned_objects"] = sweep_abandoned(svc, cutoff)
    counts.update(collect_storage(svc, cutoff, scan=scan))
    return counts


def _free_closed_files(svc: Services) -> int:
    """Staged bytes of canceled or failed file sessions that still name them: a pending file
    canceled on access when it expired keeps its ``staged_key`` (and multipart upload).
    Returns how many files let go of their bytes."""
    freed = 0

    def work(s: Session) -> Purge:
        nonlocal freed
        purge, freed = Purge([], []), 0  # a retried transaction counts afresh
        rows = s.execute(
            select(FileUploadSession).where(
                FileUploadSession.status.in_([FileState.CANCELED, FileState.ERROR]),
                FileUploadSession.staged_key.is_not(None),
            )
        ).scalars()
        for fs in rows:
            assert fs.staged_key is not None
            sessions.purge_staged(fs.staged_key, purge)
            upload_id = (fs.mechanism_state or {}).get("upload-id")
            if upload_id:
                purge.multipart.append((fs.staged_key, upload_id))
            fs.staged_key = None
            freed += 1
        return purge

    purge_blobs(svc, retrying(svc.engine, work))
    return freed


def sweep_exclusively(svc: Services, *, grace: int | None = None, scan: bool = True) -> dict | None:
    """``sweep`` under the sweep lease; None when another process is sweeping right now."""
    if not leases.take(svc.engine, leases.SWEEP):  # one process at a time, across replicas
        return None
    with svc.leases.holding(leases.SWEEP):
        return sweep(svc, grace=grace, scan=scan)
