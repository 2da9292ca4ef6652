"""Completing a file-upload session: verify the received bytes exactly like a legacy upload
(declared size and every declared hash, archive, metadata, name and version), then move them to
their content address. Large files are verified in the background (202, ``processing``)."""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from pallet import testhooks
from pallet.auth.tokens import Principal
from pallet.core.problems import Problem, ProblemError
from pallet.core.rules import UploadRules
from pallet.core.sessions import FileEvent, next_file_state
from pallet.db import leases
from pallet.db.models import FileUploadSession, UploadSession
from pallet.db.session import retrying
from pallet.http import insufficient_storage, storage_full
from pallet.outages import outage
from pallet.services import Services
from pallet.storage import blob_key
from pallet.storage.base import content_sha
from pallet.upload.links import Links
from pallet.upload.mechanisms import REGISTRY
from pallet.upload.mechanisms.base import NotReceived
from pallet.upload.spool import SpooledFile
from pallet.upload.v2 import files, sessions
from pallet.upload.v2.bodies import file_body
from pallet.upload.verify import rules_named, upload_rules, verify_file

if TYPE_CHECKING:
    from pallet.upload.v2.context import Ctx

_background: set[asyncio.Task] = set()
log = logging.getLogger("pallet.upload")


def _verify(svc: Services, fs: FileUploadSession, rules: UploadRules) -> dict:
    """Check the staged bytes; on success move them to their content address and return the
    facts to record. Raises a Problem describing the first failure."""
    staged = REGISTRY[fs.mechanism].staged(svc, fs)
    digests = staged.digests
    try:
        if digests.size != fs.size:
            raise Problem(
                400,
                "size-mismatch",
                "Size mismatch",
                f"Declared {fs.size} bytes, received {digests.size}.",
            )
        computed = digests.hexdigests
        wrong = [
            ProblemError(
                f"hashes.{algo}", f"declared {value}, the bytes hash to {computed.get(algo)}"
            )
            for algo, value in fs.hashes.items()
            if not hmac.compare_digest(value, computed.get(algo, ""))
        ]
        if wrong:
            raise Problem(
                400,
                "digest-mismatch",
                "Digest mismatch",
                "The received bytes do not match the declared hashes.",
                errors=wrong,
            )
        dest = blob_key(digests.sha256)
        if staged.path is not None:
            vf = verify_file(
                SpooledFile(staged.path, fs.filename, digests, _owned=False),
                claimed_digests={},
                rules=rules,
            )
            if not staged.final:
                # Always (re)place the blob, even if identical bytes exist: a concurrent purge
                # of the other copy can then never leave this file without its bytes.
                svc.store.put_file(dest, staged.path)
        else:
            assert staged.key is not None
            # ranged reads: no full download
            with svc.store.open(staged.key, size=digests.size) as reader:
                vf = verify_file(
                    SpooledFile(Path(fs.filename), fs.filename, digests, _owned=False),
                    claimed_digests={},
                    rules=rules,
                    source=reader,
                )
            if not staged.final:
                svc.store.move(staged.key, dest)
    finally:
        if staged.path is not None and not staged.final:
            staged.path.unlink(missing_ok=True)
    if fs.staged_key and not staged.final:
        svc.store.delete(fs.staged_key)  # gone already when the local store moved it
    if vf.metadata_sha256:
        meta = blob_key(vf.metadata_sha256)
        # Asking a remote store whether it is there costs a round trip, as much as the PUT of
        # these few kB (identical bytes, if they were there); a local store answers from a stat.
        if svc.store.local_path(meta) is None or svc.store.size(meta) is None:
            svc.store.put_bytes(meta, vf.metadata_bytes)
    return {
        "sha256": digests.sha256,
        "blake2_256": digests.blake2_256,
        "md5": digests.md5,
        "packagetype": vf.dist.packagetype,
        "python_version": vf.dist.python_version,
        "requires_python": vf.info.get("requires_python"),
        "metadata_sha256": vf.metadata_sha256,
        "info": vf.info,
    }


@dataclass(frozen=True)
class FileRef:
    """The file session being verified, and, for an answer to a request, whose request it is.
    Recovery (pallet.upload.v2.deferred) finishes other replicas' work with neither."""

    sid: str
    fid: str
    principal: Principal | None = None
    links: Links | None = None


def _finish(
    svc: Services,
    ref: FileRef,
    event: FileEvent,
    facts: dict | None,
    problem: Problem | None,
    *,
    rules: UploadRules | None = None,
) -> dict | None:
    def work(s: Session) -> dict | None:
        if ref.principal is not None:
            session, _ = sessions.load(s, ref.sid, ref.principal)
        else:  # authorised by the request that deferred it
            found = s.get(UploadSession, ref.sid)
            if found is None:
                raise sessions.not_found()
            session = found
        fs = files.load(s, session, ref.fid)
        fs.status = next_file_state(fs.status, event)
        if facts is not None:
            for key, value in facts.items():
                setattr(fs, key, value)
        if rules is not None:  # deferred: recorded, and owned from this transaction on
            fs.verify_rules = rules.name
            leases.take_in(s, leases.verification(ref.fid))
        else:
            fs.staged_key = None  # moved to its content address, or deleted on failure
        if problem is not None:
            fs.notices = [f"{problem.title}: {problem.detail}"] + [
                f"{e.source}: {e.message}" for e in problem.errors
            ]
        return file_body(svc, ref.links, session, fs) if ref.links else None

    return retrying(svc.engine, work)


def _run(
    svc: Services, fs: FileUploadSession, ref: FileRef, rules: UploadRules, deferred: bool
) -> tuple[dict | None, Problem | None]:
    if deferred and svc.settings.processing_delay:
        testhooks.hold_processing(svc.settings.processing_delay)
    ok_event = FileEvent.PROCESSING_SUCCEEDED if deferred else FileEvent.COMPLETE_DONE
    bad_event = FileEvent.PROCESSING_FAILED if deferred else FileEvent.COMPLETE_FAILED
    try:
        facts = _verify(svc, fs, rules)
    except Problem as problem:
        if isinstance(problem, NotReceived) and not deferred:
            raise  # nothing to verify yet: the file stays pending, the client sends and retries
        if fs.staged_key and content_sha(fs.staged_key) is None:  # else the collector's
            svc.store.delete(fs.staged_key)
        return _finish(svc, ref, bad_event, None, problem), problem
    except Exception as exc:
        if not deferred:
            raise  # the file stays pending: the client may simply complete again
        if outage(exc, svc):
            raise  # still `processing`: its lease freed, the next look here or elsewhere retries
        # A background failure must not leave the file `processing` forever.
        if storage_full(exc):
            failure = insufficient_storage()
        else:
            log.exception("verifying %s failed", fs.filename)
            failure = Problem(
                503,
                "verification-failed",
                "Verification failed",
                "The server could not verify the file; delete it and upload again.",
            )
        return _finish(svc, ref, bad_event, None, failure), failure
    return _finish(svc, ref, ok_event, facts, None), None


def finish_deferred(
    svc: Services, fs: FileUploadSession, ref: FileRef
) -> tuple[dict | None, Problem | None]:
    """Verify a file whose ``complete`` answered 202, holding its lease (taken already)."""
    with svc.leases.holding(leases.verification(ref.fid)):
        return _run(svc, fs, ref, rules_named(fs.verify_rules, svc.settings), True)


def _done(task: asyncio.Task) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("deferred verification interrupted (%s); it will be retried", task.exception())


async def complete(svc: Services, ctx: Ctx) -> dict:
    fs = ctx.file
    assert fs is not None and ctx.session is not None and ctx.fid is not None
    files.check_transfer(ctx.session, fs)  # only a pending file of an editable session
    ref = FileRef(ctx.sid, ctx.fid, ctx.principal, ctx.links)
    rules = upload_rules(ctx.principal, svc.settings)
    if fs.size >= svc.settings.deferred_complete_size:
        # 409 at once when no bytes arrived, before answering 202 (verified in the request,
        # a smaller file learns it from ``staged``, without asking the store twice)
        REGISTRY[fs.mechanism].has_bytes(svc, fs)
        fs.verify_rules = rules.name
        body = await run_in_threadpool(
            _finish, svc, ref, FileEvent.COMPLETE_DEFERRED, None, None, rules=rules
        )
        task = asyncio.create_task(run_in_threadpool(finish_deferred, svc, fs, ref))
        _background.add(task)
        task.add_done_callback(_done)
        # Most large files verify in well under a second: answer with the outcome then, and
        # leave the client polling (at Retry-After's whole-second grain) only for the rest.
        done, _ = await asyncio.wait({task}, timeout=svc.settings.complete_wait)
        if task in done and task.exception() is None:
            outcome, problem = task.result()
            if problem is not None:
                raise problem  # the file session is now in `error`
            assert outcome is not None
            return outcome
        assert body is not None
        return body
    outcome, problem = await run_in_threadpool(_run, svc, fs, ref, rules, False)
    if problem is not None:
        raise problem  # the file session is now in `error` (PEP 694: sync failure)
    assert outcome is not None
    return outcome
