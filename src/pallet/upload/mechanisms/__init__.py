"""Upload mechanisms: how one file's bytes reach Pallet. One module each, one registry line each.

A mechanism ``describe``s itself in the file-upload session's ``mechanism`` map, may add its own
routes (``routes``), and at ``complete`` hands back the received bytes (``staged``) or raises a
Problem saying why they are missing or wrong.
"""

from __future__ import annotations

from pallet.upload.mechanisms.base import Mechanism
from pallet.upload.mechanisms.http_post_bytes import HttpPostBytes
from pallet.upload.mechanisms.presigned_put import PresignedPut
from pallet.upload.mechanisms.s3multipart_presigned import S3MultipartPresigned

#: Preference order: bytes straight to storage first, through Pallet as the fallback.
REGISTRY: dict[str, Mechanism] = {
    m.name: m for m in (PresignedPut(), S3MultipartPresigned(), HttpPostBytes())
}


def advertised() -> list[str]:
    """Server preference order, as the ``mechanisms`` array of a publishing session."""
    return list(REGISTRY)
