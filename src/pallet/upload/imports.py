"""Bulk import of distribution files from disk (``pallet import``): mirrors of pinned lockfiles,
vendored wheels, an old index's folder.

Files go through the same verification as every upload, under the import rules (every safety
check, none of the modern-upload rules), and become visible through the same rows as
``publish_file``. What differs is the pace: files are copied and hashed in one pass and verified
on a thread pool, their blobs flushed to disk once per batch, and a batch of files enters the
database in one transaction. Re-running an import finds every file already present.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.utils import canonicalize_name, canonicalize_version
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pallet.core.problems import Problem
from pallet.core.rules import UploadRules
from pallet.db import journal, search
from pallet.db.models import DeletedFilename, File, Project, Release
from pallet.db.session import read_session, retrying
from pallet.storage import BlobStore, blob_key
from pallet.upload.publish import (
    FileFacts,
    check_quota,
    file_exists,
    get_or_create_project,
    get_or_create_release,
    insert_file,
)
from pallet.upload.spool import DEFAULT_ALGORITHMS, Digests, SpooledFile, hasher
from pallet.upload.verify import VerifiedFile, verify_file

#: What a folder walk picks up: every distribution format PyPI has served, so the unsupported
#: ones (eggs, installers) are reported as refused instead of silently skipped.
DIST_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz", ".egg", ".exe", ".msi")
BATCH = 200
CHUNK = 1 << 20

Status = Literal["imported", "present", "refused"]


@dataclass
class Outcome:
    path: Path
    filename: str
    status: Status
    reason: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {
            "path": str(self.path),
            "filename": self.filename,
            "status": self.status,
            "reason": self.reason,
        }


def find_files(paths: Iterable[Path]) -> list[Path]:
    """The files named, and the distributions under the folders named, each once, in order."""
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    if name.endswith(DIST_SUFFIXES) and not name.startswith("."):
                        found.setdefault(Path(root, name).absolute())
        elif path.is_file():
            found.setdefault(path.absolute())
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return list(found)


def _refused(path: Path, problem: Problem) -> Outcome:
    return Outcome(path, path.name, "refused", problem.detail or problem.title)


@dataclass(frozen=True)
class _Known:
    sha256: str
    published: bool


def _known(engine: Engine, names: list[str]) -> dict[str, _Known]:
    """Files already in the index under these names, read once up front, so a re-run only
    hashes each file instead of copying and verifying it again."""
    known: dict[str, _Known] = {}
    with read_session(engine) as s:
        for start in range(0, len(names), 500):
            rows = s.execute(
                select(File.filename, File.sha256, File.published).where(
                    File.filename.in_(names[start : start + 500])
                )
            )
            known.update({row.filename: _Known(row.sha256, row.published) for row in rows})
    return known


def _judge_known(path: Path, row: _Known) -> Outcome:
    sha256 = hasher("sha256")
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha256.update(chunk)
    if row.published and row.sha256 == sha256.hexdigest():
        return Outcome(path, path.name, "present")
    if not row.published:
        return Outcome(path, path.name, "refused", "reserved by an Upload 2.0 publish")
    return _refused(path, file_exists(path.name, 400))


def _spool(path: Path, tmp_dir: Path, max_size: int) -> SpooledFile:
    """Copy the file into the spool (the store consumes what it is given; the user's file stays)
    and hash it on the way, one read for both."""
    if path.stat().st_size > max_size:
        raise Problem(413, "file-too-large", "File too large", f"More than {max_size} bytes.")
    hashers = {name: hasher(name) for name in DEFAULT_ALGORITHMS}
    fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="import-", suffix=".part")
    size = 0
    try:
        with open(path, "rb") as src, os.fdopen(fd, "wb") as out:
            while chunk := src.read(CHUNK):
                size += len(chunk)
                for h in hashers.values():
                    h.update(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(name)
        raise
    digests = Digests(size, {n: h.hexdigest() for n, h in hashers.items()})
    return SpooledFile(Path(name), path.name, digests)


@dataclass(frozen=True)
class _Context:
    store: BlobStore
    rules: UploadRules
    tmp_dir: Path
    max_size: int
    known: dict[str, _Known]


def _prepare(path: Path, ctx: _Context) -> VerifiedFile | Outcome:
    """Worker side: judge the file and store its blobs (content-addressed, invisible until the
    batch's transaction adds rows; flushed to disk once per batch before that)."""
    try:
        if path.name in ctx.known:
            return _judge_known(path, ctx.known[path.name])
        spooled = _spool(path, ctx.tmp_dir, ctx.max_size)
    except OSError as exc:
        return Outcome(path, path.name, "refused", f"cannot read the file: {exc.strerror or exc}")
    except Problem as problem:
        return _refused(path, problem)
    try:
        vf = verify_file(spooled, claimed_digests={}, rules=ctx.rules)
        key = blob_key(spooled.digests.sha256)
        if ctx.store.size(key) is None:
            ctx.store.put_file(key, spooled.path, durable=False)
        if vf.metadata_sha256 and ctx.store.size(blob_key(vf.metadata_sha256)) is None:
            ctx.store.put_bytes(blob_key(vf.metadata_sha256), vf.metadata_bytes, durable=False)
        return vf
    except Problem as problem:
        return _refused(path, problem)
    finally:
        spooled.discard()  # whatever the store did not consume


def _publish_batch(engine: Engine, batch: list[tuple[Path, VerifiedFile]], quota: int) -> list[Outcome]:
    """One transaction for the batch: rows for every new file, one journal entry per project."""
    names = [vf.filename for _, vf in batch]

    def transaction(s: Session) -> list[Outcome]:
        known = {
            row.filename: _Known(row.sha256, row.published)
            for row in s.execute(
                select(File.filename, File.sha256, File.published).where(File.filename.in_(names))
            )
        }
        deleted = set(
            s.scalars(select(DeletedFilename.filename).where(DeletedFilename.filename.in_(names)))
        )
        projects: dict[str, Project] = {}
        releases: dict[tuple[int, str], Release] = {}
        added: Counter[str] = Counter()
        outcomes = []
        for path, vf in batch:
            sha = vf.spooled.digests.sha256
            row = known.get(vf.filename)
            if row is not None:  # another uploader got there since the run began, or a repeat
                outcomes.append(
                    Outcome(path, vf.filename, "present")
                    if row.published and row.sha256 == sha
                    else _refused(path, file_exists(vf.filename, 400))
                )
                continue
            if vf.filename in deleted:
                outcomes.append(Outcome(path, vf.filename, "refused", "a deleted file's name"))
                continue
            name = canonicalize_name(vf.metadata.name)
            project = projects.get(name) or get_or_create_project(s, vf.metadata.name)
            projects[name] = project
            if project.reserved_by is not None:
                outcomes.append(Outcome(path, vf.filename, "refused", "reserved by a session"))
                continue
            facts = FileFacts.of(vf)
            try:
                check_quota(s, project, facts.size, quota)
            except Problem as problem:
                outcomes.append(_refused(path, problem))
                continue
            version = (project.id, canonicalize_version(facts.version, strip_trailing_zero=True))
            release = releases.get(version) or get_or_create_release(s, project, facts)
            releases[version] = release
            insert_file(s, release, facts, via="import")
            known[vf.filename] = _Known(sha, True)
            added[name] += 1
            outcomes.append(Outcome(path, vf.filename, "imported"))
        for normalized, count in added.items():
            journal.record(s, projects[normalized], f"import {count} file(s)")
            search.refresh(s, projects[normalized])
        return outcomes

    return retrying(engine, transaction, durable=True)


def import_files(
    engine: Engine,
    store: BlobStore,
    paths: list[Path],
    *,
    rules: UploadRules,
    tmp_dir: Path,
    max_file_size: int,
    quota: int = 0,
    jobs: int | None = None,
    on_done: Callable[[Outcome], None] = lambda outcome: None,
) -> list[Outcome]:
    """Import ``paths`` (files, as ``find_files`` lists them); one outcome each, in order."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    ctx = _Context(store, rules, tmp_dir, max_file_size, _known(engine, [p.name for p in paths]))
    outcomes: list[Outcome] = []
    workers = jobs or min(8, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(workers, thread_name_prefix="pallet-import") as pool:
        for chunk in _batches(_ahead(pool, paths, lambda p: _prepare(p, ctx)), BATCH):
            batch = []
            for path, result in chunk:
                if isinstance(result, Outcome):
                    outcomes.append(result)
                    on_done(result)
                else:
                    batch.append((path, result))
            if batch:
                store.flush()  # blobs before rows
                done = _publish_batch(engine, batch, quota)
                outcomes.extend(done)
                for outcome in done:
                    on_done(outcome)
    order = {path: i for i, path in enumerate(paths)}
    outcomes.sort(key=lambda o: order[o.path])
    return outcomes


def _ahead(
    pool: ThreadPoolExecutor, paths: list[Path], work: Callable[[Path], VerifiedFile | Outcome]
) -> Iterator[tuple[Path, VerifiedFile | Outcome]]:
    """Results in order, with at most two batches in flight: the spool never holds a copy of
    a whole mirror."""
    pending: deque[tuple[Path, Future]] = deque()
    for path in paths:
        pending.append((path, pool.submit(work, path)))
        if len(pending) >= 2 * BATCH:
            done, future = pending.popleft()
            yield done, future.result()
    while pending:
        done, future = pending.popleft()
        yield done, future.result()


def _batches(items: Iterator, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch

