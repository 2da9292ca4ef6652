"""The BlobStore interface.

Blobs are immutable and content-addressed (``sha256/ab/cd/<sha256>``): the database maps filenames
to digests, so the same bytes are stored once and a blob can never be half-replaced. Every backend
passes the same contract suite (``tests/contract``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_KEY = re.compile(r"^sha256/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})$")


def blob_key(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise ValueError("not a sha256 hex digest")
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def content_sha(key: str) -> str | None:
    """The digest a content-addressed key names, or None for any other key."""
    m = _CONTENT_KEY.match(key)
    if m is None or m.group(3)[:2] != m.group(1) or m.group(3)[2:4] != m.group(2):
        return None
    return m.group(3)


def check_key(key: str) -> str:
    """Keys are relative, slash-separated, with no empty, dot or dot-dot segments."""
    if len(key) > 512 or not _KEY.match(key) or any(s in (".", "..") for s in key.split("/")):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class BlobStore(Protocol):
    def put_file(self, key: str, path: Path, *, durable: bool = True) -> None:
        """Store the file at ``path`` under ``key``, consuming it; atomic: all or nothing.
        ``durable=False`` may skip flushing to disk: for staged bytes that are re-stored
        durably before anything depends on them."""

    def put_bytes(self, key: str, data: bytes, *, durable: bool = True) -> None: ...

    def flush(self) -> None:
        """Make everything stored with ``durable=False`` durable (once for a whole batch)."""

    def open(self, key: str, *, size: int | None = None) -> BinaryIO:
        """A seekable binary reader; raises FileNotFoundError. ``size``, when the caller knows
        it already, saves a remote store the request that would ask."""

    def iter_bytes(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = 256 * 1024
    ) -> Iterator[bytes]:
        """Stream ``[start, end)`` without loading the blob in memory."""

    def size(self, key: str) -> int | None:
        """Size in bytes, or None when absent."""

    def delete(self, key: str) -> None:
        """Remove; absent keys are fine."""

    def move(self, src: str, dst: str) -> None:
        """Rename within the store (server-side on S3: no bytes through Pallet)."""

    def modified(self, key: str) -> float | None:
        """When the blob was stored at ``key`` (epoch seconds; a move counts as storing), or
        None when absent. Garbage collection's grace period is measured from it."""

    def list_keys(self, prefix: str) -> Iterator[tuple[str, float]]:
        """(key, modified) of every blob under ``prefix``, for garbage collection and fsck."""

    def local_path(self, key: str) -> Path | None:
        """A filesystem path, when the backend has one (lets the web layer use sendfile-style IO)."""

    def check(self) -> None:
        """Raise if the store is unreachable (health check)."""


# Optional capabilities: a backend that has them is used through them (``isinstance`` checks
# only that the methods exist).
@runtime_checkable
class PresignsPuts(Protocol):
    """Signs its own upload URLs (S3), so clients PUT straight to the store."""

    def presign_put(self, key: str, *, headers: dict[str, str], expires_in: int) -> str: ...


@runtime_checkable
class ListsMultipart(Protocol):
    """Keeps server-side multipart uploads (S3), which garbage collection must abort."""

    def stale_multipart(self, prefix: str, older_than: float) -> list[tuple[str, str]]: ...

    def abort_multipart(self, key: str, upload_id: str) -> None: ...


@runtime_checkable
class ReportsOutages(Protocol):
    """Can tell a passing outage (unreachable, timed out, 5xx) from a real error, so the web
    layer answers 503 with Retry-After instead of 500."""

    def unavailable(self, exc: BaseException) -> bool: ...
