"""Leftovers: what the blob store and the spool may hold that nothing needs, found and collected
(by ``pallet.gc``'s sweep and ``pallet fsck --repair``).

What the store may hold that nothing needs, and how each is found:

- *Orphan content blobs.* Uploads store a blob at its content address before the transaction
  that refers to it commits, so a crash in between (or ``pallet import`` dying before its batch
  commits) leaves a blob no row names. A blob is referenced by ``files.sha256`` and
  ``files.metadata_sha256``, and by the digests of ``completed`` (or ``processing``) file-upload
  sessions, which are not published yet. The store is listed with each key's last-modified
  time; an unreferenced blob older than the grace period (``PALLET_GC_GRACE``) is an orphan.
- *Staged objects nobody owns.* ``staging/<sid>/<fid>`` belongs to one file-upload session and
  is needed only while that file is pending or being verified. A late pre-signed PUT on S3 (a
  SigV4 URL cannot be revoked) or a crash between a cancel's commit and its deletes leaves one
  behind; file sessions canceled by lazy expiry keep their ``staged_key``.
- Spool files and temporary copies of a killed process, ``uv publish --direct`` objects never
  finalized, multipart uploads no pending file session refers to.

Orphan blobs are not deleted outright: they are moved to ``trash/<sha256>`` and deleted from
there once they have been in the trash for the grace period too. An upload that finds its bytes
already stored (identical content) does not store them again; had it found the orphan just
before the collector moved it, its file would point at the trash, and the next sweep moves any
trashed blob a row refers to back. Nothing a row refers to is ever deleted.

The grace period is what keeps in-flight uploads safe (their blob is stored moments before the
commit); ``pallet gc --grace 0`` drops it, for when nothing is uploading. Listing the whole
content store costs one LIST per thousand blobs on S3, so the in-server sweep does it at most
hourly; ``pallet gc`` always does.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pallet.core.sessions import FileState
from pallet.db.models import File, FileUploadSession, ProxiedFile
from pallet.db.session import read_session
from pallet.services import Services
from pallet.storage import LocalBlobStore, blob_key
from pallet.storage.base import ListsMultipart, content_sha
from pallet.upload.mechanisms.staging import LIVE_FILE_STATES, live_files
from pallet.upload.mechanisms.staging import PREFIX as STAGING

log = logging.getLogger("pallet.gc")


CONTENT = "sha256"


TRASH = "trash"


_BATCH = 500


SHA256 = re.compile(r"^[0-9a-f]{64}$")


REFERENCING_FILE_STATES = (FileState.COMPLETED, FileState.PROCESSING)


def cutoff_for(grace: int) -> float:
    """Things last modified at or before this moment are old enough to collect. A grace period
    of 0 (or less) makes everything old, however the store's clock compares with ours."""
    return math.inf if grace <= 0 else time.time() - grace


def trash_key(sha256: str) -> str:
    return f"{TRASH}/{sha256}"


def _batches(items: list[str], size: int = _BATCH) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def referenced(s: Session, shas: Iterable[str]) -> set[str]:
    """The digests among ``shas`` that a file row, a stored proxied file, or a completed
    file-upload session names, or whose content address a live file-upload session stages its
    bytes at (a pre-signed PUT goes there directly, see
    ``pallet.upload.mechanisms.presigned_put``)."""
    found: set[str] = set()
    columns = (
        (File.sha256, None),
        (File.metadata_sha256, None),
        (FileUploadSession.sha256, FileUploadSession.status.in_(REFERENCING_FILE_STATES)),
        (FileUploadSession.metadata_sha256, FileUploadSession.status.in_(REFERENCING_FILE_STATES)),
        (ProxiedFile.sha256, ProxiedFile.stored.is_(True)),  # an upstream's file, kept here
        (ProxiedFile.metadata_sha256, ProxiedFile.metadata_stored.is_(True)),
    )
    for chunk in _batches(sorted(set(shas))):
        for column, condition in columns:
            rest = [sha for sha in chunk if sha not in found]
            if not rest:
                break
            stmt = select(column).where(column.in_(rest))
            if condition is not None:
                stmt = stmt.where(condition)
            # The nullable columns: IN never matches NULL, so no None comes back.
            found.update(sha for sha in s.execute(stmt).scalars() if sha is not None)
        rest = [blob_key(sha) for sha in chunk if sha not in found]
        if rest:
            staged = select(FileUploadSession.staged_key).where(
                FileUploadSession.staged_key.in_(rest),
                FileUploadSession.status.in_(LIVE_FILE_STATES),
            )
            found.update(
                sha for key in s.execute(staged).scalars() if (sha := content_sha(key or ""))
            )
    return found


def is_referenced(s: Session, sha256: str) -> bool:
    return sha256 in referenced(s, [sha256])


def collect_storage(svc: Services, cutoff: float, *, scan: bool = True) -> dict[str, int]:
    """The blob store's share of a sweep (also ``pallet fsck --repair``): staged objects no
    live file owns, temporary copies, orphan content blobs to the trash, the trash emptied."""
    counts = {
        "staging_removed": _sweep_staging(svc, cutoff),
        "temporary": _sweep_store_tmp(svc, cutoff),
        "orphans_trashed": 0,
    }
    if scan:
        if _references_nothing(svc):
            # A database without a single file next to a store full of blobs is far more likely
            # a wrong --database-url than an index whose every blob is garbage.
            log.warning("gc: the database refers to no blob at all; not collecting orphans")
        else:
            counts["orphans_trashed"] = _collect_orphans(svc, cutoff)
    restored, purged = _sweep_trash(svc, cutoff)
    counts["trash_restored"], counts["trash_purged"] = restored, purged
    return counts


def _move(svc: Services, src: str, dst: str) -> bool:
    """Move ``src`` to ``dst``; False when ``src`` is gone (another sweep got there first)."""
    try:
        svc.store.move(src, dst)
    except Exception:
        if svc.store.size(src) is None:
            return False
        raise
    return True


def staging_leftovers(svc: Services) -> list[tuple[str, float]]:
    """(key, modified) of staged objects whose file-upload session no longer needs them."""
    found = list(svc.store.list_keys(STAGING))
    live = live_files(svc.engine, [key for key, _ in found])
    return [(key, modified) for key, modified in found if key not in live]


def _sweep_staging(svc: Services, cutoff: float) -> int:
    removed = 0
    for key, modified in staging_leftovers(svc):
        if modified <= cutoff:
            svc.store.delete(key)
            removed += 1
    root = svc.store.local_path(STAGING)
    if root is not None:
        _prune_empty_dirs(root, cutoff)
    return removed


def _prune_empty_dirs(root: Path, cutoff: float) -> None:
    """Empty session folders under ``staging/`` (old ones only: an upload may be about to
    store into a new one)."""
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        try:
            if path.is_dir() and path.stat().st_mtime <= cutoff:
                path.rmdir()
        except OSError:  # not empty, or gone
            pass


def _sweep_store_tmp(svc: Services, cutoff: float) -> int:
    """Temporary copies a killed process left in the local store's ``.tmp``."""
    if not isinstance(svc.store, LocalBlobStore):
        return 0
    return sweep_spool(svc.store.root / ".tmp", cutoff)


def _references_nothing(svc: Services) -> bool:
    with read_session(svc.engine) as s:
        if s.execute(select(File.id).limit(1)).first() is not None:
            return False
        if s.execute(select(ProxiedFile.sha256).limit(1)).first() is not None:
            return False
        return (
            s.execute(
                select(FileUploadSession.id).where(FileUploadSession.sha256.is_not(None)).limit(1)
            ).first()
            is None
        )


def _collect_orphans(svc: Services, cutoff: float) -> int:
    """Move unreferenced content blobs older than ``cutoff`` to the trash."""
    trashed = 0
    batch: list[str] = []
    for key, modified in svc.store.list_keys(CONTENT):
        sha = content_sha(key)
        if sha is None or modified > cutoff:
            continue  # young: its row may be about to commit
        batch.append(sha)
        if len(batch) >= _BATCH:
            trashed += _trash_unreferenced(svc, batch, cutoff)
            batch = []
    if batch:
        trashed += _trash_unreferenced(svc, batch, cutoff)
    return trashed


def _trash_unreferenced(svc: Services, shas: list[str], cutoff: float) -> int:
    with read_session(svc.engine) as s:
        refs = referenced(s, shas)
    trashed = 0
    for sha in shas:
        if sha in refs:
            continue
        key = blob_key(sha)
        modified = svc.store.modified(key)
        if modified is None or modified > cutoff:
            continue  # gone, or stored again since the listing
        if _move(svc, key, trash_key(sha)):
            log.info("gc: orphan blob %s moved to the trash", key)
            trashed += 1
    return trashed


def _sweep_trash(svc: Services, cutoff: float) -> tuple[int, int]:
    """Put back trashed blobs a row refers to; delete the others once they are old enough."""
    items = list(svc.store.list_keys(TRASH))
    if not items:
        return 0, 0
    names = {key: key.rsplit("/", 1)[-1] for key, _ in items}
    with read_session(svc.engine) as s:
        refs = referenced(s, [n for n in names.values() if SHA256.match(n)])
    restored = purged = 0
    for key, modified in items:
        sha = names[key]
        if sha in refs:
            if svc.store.size(blob_key(sha)) is None:
                _move(svc, key, blob_key(sha))
                log.warning("gc: %s was trashed while a file came to use it; restored", sha)
            else:
                svc.store.delete(key)
            restored += 1
        elif modified <= cutoff:
            again = svc.store.modified(key)
            if again is not None and again <= cutoff:
                svc.store.delete(key)
                purged += 1
    return restored, purged


def sweep_abandoned(svc: Services, cutoff: float) -> int:
    """Objects clients PUT but never finalized (``uv publish --direct``), multipart uploads no
    pending file session refers to any more (e.g. a creation that was retried), and transfers
    of large blobs a killed process left unfinished."""
    removed = 0
    for key, modified in list(svc.store.list_keys("direct")):
        if modified <= cutoff:
            svc.store.delete(key)
            removed += 1
    if isinstance(svc.store, ListsMultipart):
        for key, upload_id in svc.store.stale_multipart(STAGING, cutoff):
            with read_session(svc.engine) as s:
                live = s.execute(
                    select(FileUploadSession.id).where(
                        FileUploadSession.staged_key == key,
                        FileUploadSession.status.in_(LIVE_FILE_STATES),
                    )
                ).first()
            if live is None:
                svc.store.abort_multipart(key, upload_id)
                removed += 1
        # Large blobs reach their content address (and the trash) as managed multipart
        # transfers within one request; one older than the grace period lost its process.
        for prefix in (CONTENT, TRASH):
            for key, upload_id in svc.store.stale_multipart(prefix, cutoff):
                svc.store.abort_multipart(key, upload_id)
                removed += 1
    return removed


def sweep_spool(tmp: Path, cutoff: float) -> int:
    """Spool files left by a crashed process (live ones are being written, so they are new)."""
    removed = 0
    if tmp.is_dir():
        for path in tmp.iterdir():
            try:
                if path.is_file() and path.stat().st_mtime <= cutoff:
                    path.unlink(missing_ok=True)
                    removed += 1
            except FileNotFoundError:
                pass
    return removed
