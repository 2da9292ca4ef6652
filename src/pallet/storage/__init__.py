"""Blob storage backends behind one small interface (see ``base.BlobStore``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pallet.storage.base import BlobStore, blob_key
from pallet.storage.local import LocalBlobStore

__all__ = ["BlobStore", "LocalBlobStore", "blob_key", "open_store"]


def open_store(url: str) -> BlobStore:
    """Build the backend named by ``PALLET_STORAGE_URL``: ``file:///path`` or
    ``s3://bucket[/prefix]?endpoint_url=...&region=...``."""
    parts = urlsplit(url)
    if parts.scheme in ("file", ""):
        return LocalBlobStore(parts.path if parts.scheme else url)
    if parts.scheme == "s3":
        from pallet.storage.s3 import S3BlobStore

        return S3BlobStore(url)
    raise ValueError(f"unsupported storage URL scheme {parts.scheme!r}")
