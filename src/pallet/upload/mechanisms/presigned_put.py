"""``vnd-pallet-presigned-put``: the client PUTs the file straight to object storage with a
pre-signed URL, so no file byte passes through Pallet.

The ``mechanism`` map carries ``method`` (PUT), ``url``, ``headers`` (every header the signature
binds: Content-Length, Content-Type, x-amz-checksum-sha256, If-None-Match: *) and ``expires-at``.
The declared sha256 is bound into the URL before a byte moves, so the URL points at the file's
final content address (``sha256/ab/cd/<sha256>``), not at a staging key: ``complete`` then has
nothing to copy or move, and its cost does not grow with the file. The store itself refuses a
different length or a wrong checksum (SigV4 on S3; on the local backend Pallet serves the same
contract at ``/_/blobs/<key>``, see ``pallet.storage.signed``), and ``If-None-Match: *`` refuses
to overwrite: a PUT that finds the blob already stored (identical bytes, from any file) gets 412
and sends nothing more; ``complete`` then verifies what is there.

What ``complete`` reads: the size and sha256 the store recorded when it verified the PUT (one
HEAD with checksum mode on S3; on the local backend, where only bytes of that digest are ever
written at a content address, the key itself), plus the wheel's central directory and METADATA
(ranged reads). Only a store that kept no sha256 checksum, or other declared algorithms, make it
stream the object once through the hashes.

Until the file completes, its pending session is what keeps the blob from the orphan collector
(``pallet.leftovers.referenced``); a canceled or failed file leaves the blob to that collector
rather than deleting it, since identical bytes of another file may live at the same address.
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
from pallet.storage.base import blob_key, content_sha
from pallet.storage.signed import presign_put
from pallet.upload.links import Links
from pallet.upload.mechanisms.base import FileRoute, NotReceived
from pallet.upload.mechanisms.digests import hash_local, stream_digests
from pallet.upload.mechanisms.staged import Staged
from pallet.upload.mechanisms.staging import staging_key
from pallet.upload.spool import Digests

NAME = "vnd-pallet-presigned-put"
OCTET = "application/octet-stream"


def _algorithms(fs: FileUploadSession) -> tuple[str, ...]:
    return ("sha256", "blake2_256", *sorted(set(fs.hashes) - {"sha256", "blake2_256"}))


def _declared_extras(fs: FileUploadSession) -> tuple[str, ...]:
    """Declared algorithms besides sha256, which the store does not check for us."""
    return tuple(sorted(set(fs.hashes) - {"sha256"}))


def remote_digests(services: Services, fs: FileUploadSession) -> Digests:
    """Digests of an object the client put in the store. When the store kept a sha256 checksum
    (it verified the signed one on upload) and nothing else was declared, no byte is read;
    otherwise the object is streamed once through the hashes (never to disk)."""
    assert fs.staged_key is not None
    stored = getattr(services.store, "stored_sha256", None)
    if stored is not None and not _declared_extras(fs):
        found = stored(fs.staged_key)
        if found is None:
            raise _no_bytes()
        size, sha256 = found
        if sha256 is not None:
            return Digests(size, {"sha256": sha256})
    return stream_digests(services, fs.staged_key, _algorithms(fs))


def _target(services: Services, fs: FileUploadSession) -> str:
    """The content address, where the store guards it (checks the signed checksum and refuses
    overwrites); else a staging key of the file's own, moved after verification."""
    guards = getattr(services.store, "guards_content_addresses", None)
    if guards is None or guards():
        return blob_key(fs.hashes["sha256"])
    return staging_key(fs.session_id, fs.id)


def _no_bytes() -> NotReceived:
    return NotReceived(
        409,
        "no-bytes",
        "No file received",
        "PUT the file to the mechanism's url before completing the upload.",
    )


class PresignedPut:
    name = NAME

    def prepares_in_store(self, services: Services) -> bool:
        # Only a store's first file asks it anything (``_target``); the key is computed.
        return getattr(services.store, "content_guards_known", True) is False

    def prepare(self, services: Services, fs: FileUploadSession) -> None:
        if "sha256" not in fs.hashes:
            raise Problem(
                422,
                "mechanism-precondition",
                "sha256 required",
                f"{NAME} signs the sha256 into the upload URL: declare it in 'hashes'.",
            )
        fs.staged_key = _target(services, fs)

    def describe(self, services: Services, links: Links, fs: FileUploadSession) -> dict[str, Any]:
        if fs.status != "pending" or fs.staged_key is None:
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
            fs.staged_key,
            headers,
            expires_at - now,
            owner=f"{fs.session_id}/{fs.id}",
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
            raise _no_bytes()

    def staged(self, services: Services, fs: FileUploadSession) -> Staged:
        if not fs.staged_key:
            raise _no_bytes()
        final = content_sha(fs.staged_key) is not None  # else a staging key of an older Pallet
        path = services.store.local_path(fs.staged_key)
        if path is None:
            return Staged(remote_digests(services, fs), key=fs.staged_key, final=final)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise _no_bytes() from None
        if final and not _declared_extras(fs):
            # Only bytes of this digest are ever written at a content address (the signed
            # endpoint checks the body against the key), so the key says what a pass would.
            return Staged(Digests(size, {"sha256": fs.hashes["sha256"]}), path=path, final=True)
        return Staged(hash_local(path, _algorithms(fs)), path=path, final=final)
