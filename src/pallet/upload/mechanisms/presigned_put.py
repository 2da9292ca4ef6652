"""``vnd-pallet-presigned-put``: the client PUTs the file straight to object storage with a
pre-signed URL, so no file byte passes through Pallet.

The ``mechanism`` map carries ``method`` (PUT), ``url``, ``headers`` (every header the signature
binds: Content-Length, Content-Type, x-amz-checksum-sha256, If-None-Match: *) and ``expires-at``.
The URL points at the session's staging key and is re-issued on every status read and on
``extend``. On the S3 backend it is a SigV4 URL, and the store itself refuses a different length,
a wrong checksum or an overwrite; on the local backend Pallet serves the same contract at
``/_/blobs/<key>`` with an HMAC signature (``pallet.storage.signed``). Either way ``complete`` re-reads the object and
checks size and every declared hash before the file can be ``completed``.
"""

from __future__ import annotations

import base64
import math
import time
from datetime import UTC, datetime
from typing import Any

from pallet.core.problems import Problem
from pallet.core.upload2 import rfc3339
from pallet.db.models import FileUploadSession
from pallet.services import Services
from pallet.storage.signed import presign_put
from pallet.upload.links import Links
from pallet.upload.mechanisms.base import FileRoute
from pallet.upload.mechanisms.digests import hash_local, stream_digests
from pallet.upload.mechanisms.staged import Staged
from pallet.upload.spool import Digests

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


class PresignedPut:
    name = NAME

    def prepares_in_store(self, services: Services) -> bool:
        return False  # the staging key is computed; nothing is asked of the store

    def prepare(self, services: Services, fs: FileUploadSession) -> None:
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
        now = math.ceil(time.time())
        expires_at = min(now + services.settings.presign_ttl, int(fs.expires_at.timestamp()))
        sha256_b64 = base64.b64encode(bytes.fromhex(fs.hashes["sha256"])).decode()
        headers = {
            "Content-Length": str(fs.size),
            "Content-Type": OCTET,
            "x-amz-checksum-sha256": sha256_b64,
            "If-None-Match": "*",
        }
        url = presign_put(
            services.store,
            services.settings.secret_key,
            links.base,
            fs.staged_key or staging_key(fs),
            headers,
            expires_at - now,
        )
        return {
            "identifier": NAME,
            "method": "PUT",
            "url": url,
            "headers": headers,
            "expires-at": rfc3339(datetime.fromtimestamp(expires_at, UTC)),
        }

    def routes(self) -> list[FileRoute]:
        return []  # the local backend's signed URLs are served by pallet.upload.signed_put

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
