"""The local backend's stand-in for S3 pre-signed PUTs: ``PUT /_/blobs/<key>`` with an HMAC-signed,
expiring URL from ``pallet.storage.signed``, under the same header contract (every header in
``X-Pallet-SignedHeaders`` sent with its signed value; ``x-amz-checksum-sha256`` checked against
the body; ``If-None-Match: *`` refuses overwrites), so a client cannot tell the two apart.

Where it does better than S3 can: the URL of a file-upload session stops working once the file
is completed, canceled, deleted or expired (PEP 694: data URLs SHOULD stop working after
cancel), answering ``403 upload-closed``.
"""

from __future__ import annotations

import base64
import hmac
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pallet.core.problems import Problem
from pallet.db import session as db
from pallet.services import Services
from pallet.storage.base import check_key, content_sha
from pallet.storage.signed import SIGNABLE, signature_matches
from pallet.upload.mechanisms.staging import accepts_bytes
from pallet.upload.spool import HashingSpool


def _denied(detail: str) -> Problem:
    return Problem(403, "signature-mismatch", "Upload URL refused", detail)


def _closed() -> Problem:
    return Problem(
        403,
        "upload-closed",
        "Upload URL no longer valid",
        "The file upload session of this URL is no longer pending (it was completed, canceled, "
        "deleted or has expired), so it takes no more bytes.",
    )


async def _accepts_bytes(svc: Services, key: str, owner: str | None) -> bool:
    return await db.read(svc.engine, lambda s: accepts_bytes(s, key, owner))


async def receive_signed_put(request: Request) -> Response:
    svc: Services = request.app.state.services
    key = request.path_params["key"]
    names = request.query_params.get("X-Pallet-SignedHeaders", "").split(";")
    try:
        check_key(key)
        expires = int(request.query_params.get("X-Pallet-Expires", ""))
    except ValueError:
        raise _denied("Malformed upload URL.") from None
    if not set(names) <= set(SIGNABLE):
        raise _denied("Unknown signed header.")
    headers = {n: request.headers.get(n, "") for n in names if n}
    given = request.query_params.get("X-Pallet-Signature", "")
    owner = request.query_params.get("X-Pallet-Owner")
    if not signature_matches(svc.settings.secret_key, key, expires, headers, given, owner):
        raise _denied("The signature does not match this URL and these headers.")
    if time.time() > expires:
        raise Problem(
            403,
            "url-expired",
            "Upload URL expired",
            "Ask for a fresh URL (the file upload session's status, or extend).",
        )
    if not await _accepts_bytes(svc, key, owner):
        raise _closed()
    if headers.get("if-none-match") == "*" and svc.store.size(key) is not None:
        raise Problem(412, "already-uploaded", "Object exists", "This upload URL was used.")
    declared = request.headers.get("content-length", "")
    limit = int(declared) if declared.isdigit() else svc.settings.max_file_size
    limit = min(limit, svc.settings.max_file_size)
    final = content_sha(key)  # the digest a content address names
    checksum = headers.get("x-amz-checksum-sha256") or request.headers.get("x-amz-checksum-sha256")
    # A multipart part binds no checksum: it is hashed once, whole, at complete.
    hashed = ("sha256",) if checksum or final else ()
    spool = HashingSpool(svc.settings.tmp_dir, key, limit, hashed)
    try:
        async for chunk in request.stream():
            await spool.write(chunk)
        spooled = await spool.finish()
    except Problem:
        await spool.abort()
        raise Problem(
            400, "size-mismatch", "Size mismatch", f"More than {limit} bytes were sent."
        ) from None
    except BaseException:
        await spool.abort()
        raise
    try:
        if declared.isdigit() and spooled.digests.size != int(declared):
            raise Problem(400, "size-mismatch", "Size mismatch", "The body was cut short.")
        if checksum:
            digest = base64.b64encode(bytes.fromhex(spooled.digests.sha256)).decode()
            if not hmac.compare_digest(
                digest.encode(), checksum.encode("utf-8", "surrogateescape")
            ):
                raise Problem(
                    400, "bad-digest", "BadDigest", "The body does not match x-amz-checksum-sha256."
                )
        # A content address holds only bytes of that digest, whatever a URL says: then the
        # PUT is the blob's final placement, made durable here (a staged key is re-stored
        # durably at ``complete``).
        if final and not hmac.compare_digest(final, spooled.digests.sha256):
            raise Problem(400, "bad-digest", "BadDigest", "The body does not hash to its key.")
        await run_in_threadpool(svc.store.put_file, key, spooled.path, durable=bool(final))
    finally:
        spooled.discard()
    # Completed, canceled or expired while the body streamed in: what was just stored belongs
    # to nobody, and the complete or cancel that closed the file will not come back for it.
    # (Identical bytes at a content address may belong to another file: the orphan collector
    # decides about those.)
    if not await _accepts_bytes(svc, key, owner):
        if not final:
            await run_in_threadpool(svc.store.delete, key)
        raise _closed()
    return Response(status_code=200)


routes = [Route("/_/blobs/{key:path}", receive_signed_put, methods=["PUT"])]
