"""``vnd-pallet-presigned-put``: the client PUTs the file straight to object storage with a
pre-signed URL, so no file byte passes through Pallet.

The ``mechanism`` map carries ``method`` (PUT), ``url``, ``headers`` (every header the signature
binds: Content-Length, Content-Type, x-amz-checksum-sha256, If-None-Match: *) and ``expires-at``.
The URL points at the session's staging key and is re-issued on every status read and on
``extend``. On the S3 backend it is a SigV4 URL, and the store itself refuses a different length,
a wrong checksum or an overwrite; on the local backend Pallet serves the same contract at
``{root}blobs/<key>`` with an HMAC signature. Either way ``complete`` re-reads the object and
checks size and every declared hash before the file can be ``completed``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pallet.core.problems import Problem
from pallet.core.upload2 import rfc3339
from pallet.db.models import FileUploadSession
from pallet.services import Services
from pallet.storage.base import check_key
from pallet.upload.mechanisms.digests import hash_local, stream_digests
from pallet.upload.mechanisms.staged import Staged
from pallet.upload.spool import Digests, HashingSpool
from pallet.upload.v2.links import Links

NAME = "vnd-pallet-presigned-put"
OCTET = "application/octet-stream"


def staging_key(fs: FileUploadSession) -> str:
    return f"staging/{fs.session_id}/{fs.id}"


def _algorithms(fs: FileUploadSession) -> tuple[str, ...]:
    return ("sha256", "blake2_256", *sorted(set(fs.hashes) - {"sha256", "blake2_256"}))


def remote_digests(services: Services, fs: FileUploadSession) -> Digests:
    """Digests of an object the client put in the store. When the store kept a sha256 checksum
    (it verified the signed one on upload) and nothing else was declared, no byte is read;
    otherwise the object is streamed once through the hashes (never to disk)."""
    assert fs.staged_key is not None
    stored = getattr(services.store, "stored_sha256", None)
    if stored is not None and set(fs.hashes) <= {"sha256"}:
        size, sha256 = stored(fs.staged_key)
        if sha256 is not None:
            return Digests(size, {"sha256": sha256})
    return stream_digests(services, fs.staged_key, _algorithms(fs))


def _signature(secret: str, key: str, expires: int, headers: dict[str, str]) -> str:
    message = "\n".join(
        [
            "PUT",
            key,
            str(expires),
            headers.get("content-length", ""),
            headers.get("content-type", ""),
            headers.get("x-amz-checksum-sha256", ""),
            headers.get("if-none-match", ""),
        ]
    )
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class PresignedPut:
    name = NAME

    def prepare(self, fs: FileUploadSession) -> None:
        if "sha256" not in fs.hashes:
            raise Problem(
                422,
                "mechanism-precondition",
                "sha256 required",
                f"{NAME} signs the sha256 into the upload URL: declare it in 'hashes'.",
            )
        fs.staged_key = staging_key(fs)

    def describe(self, services: Services, links: Links, fs: FileUploadSession) -> dict[str, Any]:
        if fs.status != "pending":
            return {"identifier": NAME}
        now = int(time.time())
        expires_at = min(now + services.settings.presign_ttl, int(fs.expires_at.timestamp()))
        sha256_b64 = base64.b64encode(bytes.fromhex(fs.hashes["sha256"])).decode()
        key = fs.staged_key or staging_key(fs)
        presign = getattr(services.store, "presign_put", None)
        if presign is not None:
            url, headers = presign(
                key, size=fs.size, sha256_b64=sha256_b64, expires_in=max(expires_at - now, 1)
            )
        else:
            headers = {
                "Content-Length": str(fs.size),
                "Content-Type": OCTET,
                "x-amz-checksum-sha256": sha256_b64,
                "If-None-Match": "*",
            }
            sig = _signature(
                services.settings.secret_key,
                key,
                expires_at,
                {k.lower(): v for k, v in headers.items()},
            )
            url = (
                f"{links.base}{links.root}blobs/{quote(key)}"
                f"?X-Pallet-Expires={expires_at}&X-Pallet-Signature={sig}"
            )
        return {
            "identifier": NAME,
            "method": "PUT",
            "url": url,
            "headers": headers,
            "expires-at": rfc3339(datetime.fromtimestamp(expires_at, UTC)),
        }

    def routes(self) -> list[BaseRoute]:
        return [Route("/blobs/{key:path}", receive_signed_put, methods=["PUT"])]

    def has_bytes(self, services: Services, fs: FileUploadSession) -> None:
        if not fs.staged_key or services.store.size(fs.staged_key) is None:
            raise Problem(
                409,
                "no-bytes",
                "No file received",
                "PUT the file to the mechanism's url before completing the upload.",
            )

    def staged(self, services: Services, fs: FileUploadSession) -> Staged:
        self.has_bytes(services, fs)
        assert fs.staged_key is not None
        path = services.store.local_path(fs.staged_key)
        if path is not None:
            return Staged(hash_local(path, _algorithms(fs)), path=path)
        return Staged(remote_digests(services, fs), key=fs.staged_key)


def _denied(detail: str) -> Problem:
    return Problem(403, "signature-mismatch", "Upload URL refused", detail)


async def receive_signed_put(request: Request) -> Response:
    """The local backend's stand-in for an S3 pre-signed PUT (same header contract)."""
    svc: Services = request.app.state.services
    key = request.path_params["key"]
    try:
        check_key(key)
        expires = int(request.query_params.get("X-Pallet-Expires", ""))
    except ValueError:
        raise _denied("Malformed upload URL.") from None
    headers = {
        k: request.headers.get(k, "")
        for k in ("content-length", "content-type", "x-amz-checksum-sha256", "if-none-match")
    }
    expected = _signature(svc.settings.secret_key, key, expires, headers)
    if not hmac.compare_digest(expected, request.query_params.get("X-Pallet-Signature", "")):
        raise _denied("The signature does not match this URL and these headers.")
    if time.time() > expires:
        raise Problem(
            403,
            "url-expired",
            "Upload URL expired",
            "Ask the file upload session for a fresh URL (GET or extend).",
        )
    if headers["if-none-match"] == "*" and svc.store.size(key) is not None:
        raise Problem(412, "already-uploaded", "Object exists", "This upload URL was used.")
    if not headers["content-length"].isdigit():  # signed, so only a forged URL gets here
        raise _denied("Content-Length is required.")
    size = int(headers["content-length"])
    spool = HashingSpool(svc.settings.tmp_dir, key, size, ("sha256",))
    try:
        async for chunk in request.stream():
            await spool.write(chunk)
        spooled = await spool.finish()
    except Problem:
        await spool.abort()
        raise Problem(
            400, "size-mismatch", "Size mismatch", f"More than the signed {size} bytes were sent."
        ) from None
    except BaseException:
        await spool.abort()
        raise
    try:
        digest = base64.b64encode(bytes.fromhex(spooled.digests.sha256)).decode()
        if spooled.digests.size != size:
            raise Problem(
                400,
                "size-mismatch",
                "Size mismatch",
                f"{spooled.digests.size} bytes sent, {size} signed.",
            )
        if not hmac.compare_digest(digest, headers["x-amz-checksum-sha256"]):
            raise Problem(
                400, "bad-digest", "BadDigest", "The body does not match x-amz-checksum-sha256."
            )
        await run_in_threadpool(svc.store.put_file, key, spooled.path, durable=False)
    finally:
        spooled.discard()
    return Response(status_code=200)
