"""``pallet fsck``: does the blob store hold exactly what the database says, and intact?

- *missing*: a blob a row refers to (a file's bytes or its METADATA, or a completed but
  unpublished Upload 2.0 file) is not in the store. If garbage collection had trashed it, it is
  in ``trash/`` and ``--repair`` puts it back.
- *mismatched*: a blob whose bytes do not hash to its content address, or whose size differs
  from the file row's. Never repaired: the bytes are wrong and only a re-upload can help.
- *orphans*: content blobs no row refers to; staged objects no live file-upload session owns;
  trashed blobs waiting for deletion. Those younger than the grace period are normal (an upload
  in flight stores its blob moments before its row commits) and are only listed.

``--repair`` runs garbage collection's storage steps (``pallet.leftovers.collect_storage``) with the
same grace period first, then checks. Reads every blob once (``--quick`` skips that: no hash
check); keeps one entry per stored blob in memory.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from sqlalchemy import select

from pallet.db.models import File, FileUploadSession
from pallet.db.session import read_session
from pallet.leftovers import (
    CONTENT,
    REFERENCING_FILE_STATES,
    SHA256,
    TRASH,
    collect_storage,
    cutoff_for,
    referenced,
    staging_leftovers,
)
from pallet.services import Services
from pallet.storage import blob_key
from pallet.storage.base import content_sha

_PAGE = 1000
_CHUNK = 4 * 2**20


@dataclass
class Report:
    grace_seconds: int
    blobs: int = 0
    verified: int = 0
    files: int = 0
    session_files: int = 0
    missing: list[dict] = field(default_factory=list)
    mismatched: list[dict] = field(default_factory=list)
    orphans: list[dict] = field(default_factory=list)
    staging: list[dict] = field(default_factory=list)
    trash: list[dict] = field(default_factory=list)
    stray: list[dict] = field(default_factory=list)
    repaired: dict[str, int] | None = None

    @property
    def problems(self) -> int:
        """Everything that is wrong now: young orphans are not (see the module docstring)."""
        stale = [o for o in (*self.orphans, *self.staging) if o["removable"]]
        trash = [t for t in self.trash if t["referenced"] or t["removable"]]
        return len(self.missing) + len(self.mismatched) + len(stale) + len(trash) + len(self.stray)

    def as_dict(self) -> dict:
        return {**asdict(self), "problems": self.problems, "clean": self.problems == 0}


@dataclass
class _Ref:
    role: str  # "file" or "metadata"
    filename: str
    where: str  # "files" or "upload-session"
    size: int | None  # expected size of a file's own blob


def check(
    svc: Services,
    *,
    grace: int | None = None,
    repair: bool = False,
    verify: bool = True,
    workers: int = 4,
) -> Report:
    grace = svc.settings.gc_grace if grace is None else grace
    report = Report(grace_seconds=grace)
    if repair:
        report.repaired = collect_storage(svc, cutoff_for(grace))
    now = time.time()
    # The store first, then the database: a blob stored (and its row committed) in between is
    # then seen as missing, which a second look clears; the other order would report it orphan.
    stored: dict[str, float] = {}
    for key, modified in svc.store.list_keys(CONTENT):
        sha = content_sha(key)
        if sha is None:
            report.stray.append({"key": key})
        else:
            stored[sha] = modified
    report.blobs = len(stored)
    expected_size: dict[str, tuple[int, str]] = {}
    used: set[str] = set()
    for sha, ref in _references(svc, report):
        if sha in stored:
            used.add(sha)
            if ref.size is not None:
                expected_size[sha] = (ref.size, ref.filename)
        elif svc.store.size(blob_key(sha)) is None:
            report.missing.append(
                {
                    "key": blob_key(sha),
                    "sha256": sha,
                    "role": ref.role,
                    "filename": ref.filename,
                    "where": ref.where,
                    "in_trash": svc.store.size(f"{TRASH}/{sha}") is not None,
                }
            )
    if verify:
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="pallet-fsck") as pool:
            for sha, size, digest in pool.map(lambda x: _digest(svc, x), sorted(stored)):
                if digest is None:
                    continue  # removed while we looked (a sweep or a concurrent fsck)
                report.verified += 1
                if digest != sha:
                    report.mismatched.append(
                        {"key": blob_key(sha), "problem": "hash", "expected": sha, "actual": digest}
                    )
                elif sha in expected_size and expected_size[sha][0] != size:
                    want, filename = expected_size[sha]
                    report.mismatched.append(
                        {
                            "key": blob_key(sha),
                            "problem": "size",
                            "filename": filename,
                            "expected": want,
                            "actual": size,
                        }
                    )
    with read_session(svc.engine) as s:  # a row committed during the scan is no orphan
        late = referenced(s, [sha for sha in stored if sha not in used])
    for sha in sorted(set(stored) - used - late):
        age = now - stored[sha]
        report.orphans.append(_aged(blob_key(sha), age, grace))
    for key, modified in staging_leftovers(svc):
        report.staging.append(_aged(key, now - modified, grace))
    trash = sorted(svc.store.list_keys(TRASH))
    names = [key.rsplit("/", 1)[-1] for key, _ in trash]
    with read_session(svc.engine) as s:
        wanted = referenced(s, [name for name in names if SHA256.match(name)])
    for (key, modified), name in zip(trash, names, strict=True):
        entry = _aged(key, now - modified, grace)
        entry["referenced"] = name in wanted
        report.trash.append(entry)
    return report


def _aged(key: str, age: float, grace: int) -> dict:
    return {"key": key, "age_seconds": max(0, int(age)), "removable": age >= grace}


def _references(svc: Services, report: Report) -> Iterator[tuple[str, _Ref]]:
    """Every (digest, reference) the database holds, a page per read transaction."""
    last = 0
    while True:
        with read_session(svc.engine) as s:
            rows = s.execute(
                select(File.id, File.filename, File.sha256, File.metadata_sha256, File.size)
                .where(File.id > last)
                .order_by(File.id)
                .limit(_PAGE)
            ).all()
        if not rows:
            break
        for row in rows:
            report.files += 1
            yield row.sha256, _Ref("file", row.filename, "files", row.size)
            if row.metadata_sha256:
                yield row.metadata_sha256, _Ref("metadata", row.filename, "files", None)
        last = rows[-1].id
    after = ""
    while True:
        with read_session(svc.engine) as s:
            staged = s.execute(
                select(
                    FileUploadSession.id,
                    FileUploadSession.filename,
                    FileUploadSession.sha256,
                    FileUploadSession.metadata_sha256,
                    FileUploadSession.size,
                )
                .where(
                    FileUploadSession.id > after,
                    FileUploadSession.status.in_(REFERENCING_FILE_STATES),
                    FileUploadSession.sha256.is_not(None),
                )
                .order_by(FileUploadSession.id)
                .limit(_PAGE)
            ).all()
        if not staged:
            break
        for fs in staged:
            report.session_files += 1
            yield fs.sha256, _Ref("file", fs.filename, "upload-session", fs.size)
            if fs.metadata_sha256:
                yield fs.metadata_sha256, _Ref("metadata", fs.filename, "upload-session", None)
        after = staged[-1].id


def _digest(svc: Services, sha: str) -> tuple[str, int, str | None]:
    """(sha, size, sha256 of the bytes) of a stored blob; None when it vanished."""
    h = hashlib.sha256()
    size = 0
    try:
        for chunk in svc.store.iter_bytes(blob_key(sha), chunk_size=_CHUNK):
            h.update(chunk)
            size += len(chunk)
    except FileNotFoundError:
        return sha, 0, None
    return sha, size, h.hexdigest()


def render(report: Report) -> str:
    """The human-readable report: one line per problem, then a summary."""
    lines = []
    for m in report.missing:
        what = "METADATA of " if m["role"] == "metadata" else ""
        hint = " (in the trash: pallet fsck --repair restores it)" if m["in_trash"] else ""
        lines.append(f"missing   {m['key']}  {what}{m['filename']} [{m['where']}]{hint}")
    for m in report.mismatched:
        if m["problem"] == "hash":
            lines.append(f"corrupt   {m['key']}  bytes hash to {m['actual']}")
        else:
            lines.append(
                f"corrupt   {m['key']}  {m['filename']}: {m['actual']} bytes, "
                f"the file row says {m['expected']}"
            )
    for kind, entries in (("orphan", report.orphans), ("staged", report.staging)):
        for o in entries:
            state = "removable" if o["removable"] else "within the grace period"
            lines.append(f"{kind:<9} {o['key']}  age {_age(o['age_seconds'])}, {state}")
    for t in report.trash:
        if t["referenced"]:
            lines.append(f"trashed   {t['key']}  still referenced: --repair restores it")
        elif t["removable"]:
            lines.append(f"trashed   {t['key']}  age {_age(t['age_seconds'])}, removable")
    for s in report.stray:
        lines.append(f"stray     {s['key']}  not a content address")
    if report.repaired is not None:
        done = ", ".join(f"{k}={v}" for k, v in report.repaired.items())
        lines.append(f"repaired: {done}")
    verified = f", {report.verified} hashed" if report.verified else ""
    lines.append(
        f"{report.blobs} blobs{verified}; {report.files} files, {report.session_files} unpublished "
        f"session files; {len(report.missing)} missing, {len(report.mismatched)} corrupt, "
        f"{len(report.orphans)} orphan blobs, {len(report.staging)} orphan staged objects, "
        f"{len(report.trash)} in the trash (grace {report.grace_seconds} s): "
        + ("clean" if report.problems == 0 else f"{report.problems} problem(s)")
    )
    return "\n".join(lines)


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
