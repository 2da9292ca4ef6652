"""Pre-signed PUT URLs for any backend: issuing them, and checking a local one's signature (the
endpoint that takes the bytes is ``pallet.upload.signed_put``).

On S3 they are SigV4 URLs from botocore and the store enforces them. On the local backend Pallet
issues HMAC-signed, expiring URLs for its own ``/_/blobs/<key>`` endpoint with the same header
contract (every header listed in ``X-Pallet-SignedHeaders`` must be sent with the signed value;
``x-amz-checksum-sha256`` is checked against the body, ``If-None-Match: *`` refuses overwrites),
so a client cannot tell the two apart.

One difference, where the local endpoint does better than S3 can: a URL of a file-upload session
stops working once the file is completed, canceled, deleted or expired (PEP 694: data URLs SHOULD
stop working after cancel), answering ``403 upload-closed``. A SigV4 URL cannot be revoked, so on
S3 garbage collection removes what such a late PUT recreates under ``staging/``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Mapping
from urllib.parse import quote

from pallet.storage.base import BlobStore, PresignsPuts, check_key

SIGNABLE = ("content-length", "content-type", "x-amz-checksum-sha256", "if-none-match")


def _signature(
    secret: str, key: str, expires: int, headers: dict[str, str], owner: str | None
) -> str:
    names = sorted(headers)
    lines = ["PUT", key, str(expires), ";".join(names), *(headers[n] for n in names)]
    message = "\n".join(lines if owner is None else [*lines, owner])
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def presign_put(
    store: BlobStore,
    secret_key: str,
    base_url: str,
    key: str,
    headers: dict[str, str],
    expires_in: int,
    *,
    owner: str | None = None,
) -> str:
    """A URL accepting one PUT of ``key`` with exactly ``headers`` (names from SIGNABLE).
    ``owner`` (``<session id>/<file id>``) ties a local URL to the file-upload session it was
    issued for, when the key alone does not name it (a content address)."""
    check_key(key)
    lowered = {k.lower(): v for k, v in headers.items()}
    assert set(lowered) <= set(SIGNABLE), lowered
    if isinstance(store, PresignsPuts):
        return store.presign_put(key, headers=lowered, expires_in=max(expires_in, 1))
    expires = math.ceil(time.time()) + max(expires_in, 1)
    sig = _signature(secret_key, key, expires, lowered, owner)
    bound = "" if owner is None else f"&X-Pallet-Owner={quote(owner, safe='/')}"
    return (
        f"{base_url}/_/blobs/{quote(key)}?X-Pallet-Expires={expires}"
        f"&X-Pallet-SignedHeaders={';'.join(sorted(lowered))}{bound}&X-Pallet-Signature={sig}"
    )


def signature_matches(
    secret: str,
    key: str,
    expires: int,
    headers: Mapping[str, str],
    given: str,
    owner: str | None = None,
) -> bool:
    """Constant-time check of a presented signature (any text: a non-ASCII one simply fails)."""
    expected = _signature(secret, key, expires, dict(headers), owner)
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))
