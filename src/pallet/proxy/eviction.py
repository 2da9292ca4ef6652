"""Keeping proxied files within ``upstream_quota``: the least recently used go first, and only
proxied ones. A file a lockfile pins (``pallet prefetch``) is never evicted, and bytes that
are also a private file's (the same sha256) are never deleted: the row forgets them, the
blob stays for its other owner.

Run by every garbage-collection sweep (one replica at a time, under the sweep's lease). A
file's row is marked not stored before its blob is deleted: a crash in between leaves an
orphan blob, which the sweep's orphan step collects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from pallet.db.models import ProxiedFile, ProxyPin
from pallet.db.session import read_session, retrying
from pallet.services import Services
from pallet.storage import blob_key

BATCH = 200


def _stored_bytes(s: Session) -> int:
    total = s.execute(
        select(func.coalesce(func.sum(ProxiedFile.size), 0)).where(ProxiedFile.stored.is_(True))
    ).scalar_one()
    return int(total or 0)


def evict(
    svc: Services, is_referenced: Callable[[Session, str], bool], quota: int | None = None
) -> int:
    """Evict until the stored proxied files fit ``quota`` (the setting's by default); how many
    files were evicted. ``is_referenced`` is garbage collection's own test of a blob."""
    quota = svc.settings.upstream_quota if quota is None else quota
    if quota <= 0:
        return 0
    evicted = 0
    with read_session(svc.engine) as s:
        over = _stored_bytes(s) - quota
    while over > 0:
        with read_session(svc.engine) as s:
            candidates = s.execute(
                select(ProxiedFile.sha256, ProxiedFile.size, ProxiedFile.metadata_sha256,
                       ProxiedFile.metadata_stored)
                .where(ProxiedFile.stored.is_(True))
                .where(~exists().where(ProxyPin.sha256 == ProxiedFile.sha256))
                .order_by(ProxiedFile.last_used.asc().nulls_first(), ProxiedFile.sha256)
                .limit(BATCH)
            ).all()  # fmt: skip
        if not candidates:
            break  # what is left is pinned
        for sha, size, metadata_sha, metadata_stored in candidates:
            if over <= 0:
                break
            if not retrying(svc.engine, functools.partial(_forget, sha256=sha)):
                continue  # pinned or gone meanwhile
            for digest in (sha, metadata_sha if metadata_stored else None):
                if digest is None:
                    continue
                with read_session(svc.engine) as s:
                    if is_referenced(s, digest):
                        continue  # a private file (or another row) has the same bytes
                svc.store.delete(blob_key(digest))
            over -= size or 0
            evicted += 1
    return evicted


def _forget(s: Session, sha256: str) -> bool:
    row = s.get(ProxiedFile, sha256)
    pinned = s.execute(select(ProxyPin.sha256).where(ProxyPin.sha256 == sha256)).first()
    if row is None or not row.stored or pinned is not None:
        return False
    row.stored, row.metadata_stored = False, False
    return True
