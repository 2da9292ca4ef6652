"""Deferred work left behind: ``processing`` publishes and verifications whose owner is gone.

A 202 answer promises that the work will finish. The process that gave it owns the work through
a lease (pallet.db.leases), renewed while it works. If that process dies, or the database or the
store went away mid-way, the lease lapses or is released, and the next replica to look takes the
work over. Every replica looks every few seconds; the lease lets exactly one do each item, and
each item re-checks its state under the lease, so work that finished meanwhile is not redone.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from pallet.core.sessions import FileState, SessionState
from pallet.db import leases
from pallet.db.models import FileUploadSession, UploadSession
from pallet.db.session import read_session
from pallet.services import Services
from pallet.upload.v2 import complete, publishing

log = logging.getLogger("pallet.upload")


def _still_processing(svc: Services, model: type, key: str) -> object | None:
    with read_session(svc.engine) as s:
        row = s.get(model, key)
        return row if row is not None and row.status == "processing" else None


def recover(svc: Services) -> dict[str, int]:
    """Finish every orphaned item this process can take; returns how many of each."""
    counts = {"publishes_recovered": 0, "verifications_recovered": 0}
    with read_session(svc.engine) as s:
        sids = s.execute(
            select(UploadSession.id).where(UploadSession.status == SessionState.PROCESSING)
        ).scalars().all()
        fids = s.execute(
            select(FileUploadSession.id).where(FileUploadSession.status == FileState.PROCESSING)
        ).scalars().all()
    for sid in sids:
        name = leases.publish(sid)
        if not leases.take(svc.engine, name):
            continue  # its owner is alive and at it
        if _still_processing(svc, UploadSession, sid) is None:
            leases.release(svc.engine, name)
            continue
        log.info("finishing the deferred publish of session %s for a replica that left it", sid)
        publishing.finish_deferred(svc, sid)
        counts["publishes_recovered"] += 1
    for fid in fids:
        name = leases.verification(fid)
        if not leases.take(svc.engine, name):
            continue
        fs = _still_processing(svc, FileUploadSession, fid)
        if not isinstance(fs, FileUploadSession):
            leases.release(svc.engine, name)
            continue
        log.info("verifying file session %s for a replica that left it", fid)
        complete.finish_deferred(svc, fs, complete.FileRef(fs.session_id, fid))
        counts["verifications_recovered"] += 1
    return counts
