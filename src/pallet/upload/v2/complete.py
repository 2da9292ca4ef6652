"""Completing a file-upload session: verify the received bytes exactly like a legacy upload
(declared size and every declared hash, archive, metadata, name and version), then move them to
their content address. Large files are verified in the background (202, ``processing``)."""

from __future__ import annotations

import asyncio
import hmac
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from pallet import testhooks
from pallet.core.problems import Problem, ProblemError
from pallet.core.rules import UploadRules
from pallet.core.sessions import FileEvent, next_file_state
from pallet.db.models import FileUploadSession
from pallet.db.session import retrying
from pallet.http import insufficient_storage, storage_full
from pallet.services import Services
from pallet.storage import blob_key
from pallet.upload.mechanisms import REGISTRY
from pallet.upload.spool import SpooledFile
from pallet.upload.v2 import files, sessions
from pallet.upload.v2.bodies import file_body
from pallet.upload.verify import upload_rules, verify_file

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
            # Always (re)place the blob, even if identical bytes exist: a concurrent purge of
            # the other copy can then never leave this file without its bytes.
            svc.store.put_file(dest, staged.path)
        else:
            assert staged.key is not None
            with svc.store.open(staged.key) as reader:  # ranged reads: no full download
                vf = verify_file(
                    SpooledFile(Path(fs.filename), fs.filename, digests, _owned=False),
                    claimed_digests={},
                    rules=rules,
                    source=reader,
                )
            svc.store.move(staged.key, dest)
    finally:
        if staged.path is not None:
            staged.path.unlink(missing_ok=True)
    if fs.staged_key:
        svc.store.delete(fs.staged_key)  # gone already when the local store moved it
    if vf.metadata_sha256 and svc.store.size(blob_key(vf.metadata_sha256)) is None:
        svc.store.put_bytes(blob_key(vf.metadata_sha256), vf.metadata_bytes)
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


def _finish(
    svc: Services, ctx: Ctx, event: FileEvent, facts: dict | None, problem: Problem | None
) -> dict:
    def work(s: Session) -> dict:
        session, _ = sessions.load(s, ctx.sid, ctx.principal)
        fs = files.load(s, session, ctx.fid or "")
        fs.status = next_file_state(fs.status, event)
        if facts is not None:
            for key, value in facts.items():
                setattr(fs, key, value)
        fs.staged_key = None  # moved to its content address, or deleted on failure
        if problem is not None:
            fs.notices = [f"{problem.title}: {problem.detail}"] + [
                f"{e.source}: {e.message}" for e in problem.errors
            ]
        return file_body(svc, ctx.links, session, fs)

    return retrying(svc.engine, work)


def _run(svc: Services, ctx: Ctx, deferred: bool) -> tuple[dict, Problem | None]:
    if deferred and svc.settings.processing_delay:
        testhooks.hold_processing(svc.settings.processing_delay)
    with_file = ctx.file
    assert with_file is not None
    ok_event = FileEvent.PROCESSING_SUCCEEDED if deferred else FileEvent.COMPLETE_DONE
    bad_event = FileEvent.PROCESSING_FAILED if deferred else FileEvent.COMPLETE_FAILED
    try:
        facts = _verify(svc, with_file, upload_rules(ctx.principal, svc.settings))
    except Problem as problem:
        if with_file.staged_key:
            svc.store.delete(with_file.staged_key)
        return _finish(svc, ctx, bad_event, None, problem), problem
    except Exception as exc:
        if not deferred:
            raise  # the file stays pending: the client may simply complete again
        # A background failure must not leave the file `processing` forever.
        if storage_full(exc):
            failure = insufficient_storage()
        else:
            log.exception("verifying %s failed", with_file.filename)
            failure = Problem(
                503,
                "verification-failed",
                "Verification failed",
                "The server could not verify the file; delete it and upload again.",
            )
        return _finish(svc, ctx, bad_event, None, failure), failure
    return _finish(svc, ctx, ok_event, facts, None), None


async def complete(svc: Services, ctx: Ctx) -> dict:
    fs = ctx.file
    assert fs is not None and ctx.session is not None
    files.check_transfer(ctx.session, fs)  # only a pending file of an editable session
    REGISTRY[fs.mechanism].has_bytes(svc, fs)  # 409 at once when no bytes arrived
    if fs.size >= svc.settings.deferred_complete_size:
        body = await run_in_threadpool(_finish, svc, ctx, FileEvent.COMPLETE_DEFERRED, None, None)
        task = asyncio.create_task(run_in_threadpool(_run, svc, ctx, True))
        _background.add(task)
        task.add_done_callback(_background.discard)
        # Most large files verify in well under a second: answer with the outcome then, and
        # leave the client polling (at Retry-After's whole-second grain) only for the rest.
        done, _ = await asyncio.wait({task}, timeout=svc.settings.complete_wait)
        if task in done:
            body, problem = task.result()
            if problem is not None:
                raise problem  # the file session is now in `error`
        return body
    body, problem = await run_in_threadpool(_run, svc, ctx, False)
    if problem is not None:
        raise problem  # the file session is now in `error` (PEP 694: sync failure)
    return body
