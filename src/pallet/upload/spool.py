"""Spool an incoming file to disk while hashing it, with flat memory and both cores busy.

Bytes arrive on the event loop; they are batched into ~4 MiB pieces and handed to worker threads
(hashlib and file writes release the GIL): sha256 and the write on one thread, each other digest
on its own, while the loop goes on receiving the next piece. At most two pieces are in flight, so
memory stays flat whatever the file size.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pallet.core.problems import Problem
from pallet.storage.local import write_all

BATCH = 4 * 2**20
WRITEBACK_EVERY = 64 * 2**20
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="pallet-spool")


def too_large(limit: int) -> Problem:
    return Problem(
        413,
        "file-too-large",
        "File too large",
        f"This index accepts files of at most {limit} bytes (PALLET_MAX_FILE_SIZE).",
    )


#: hashlib constructors by the names Pallet stores; ``blake2_256`` is PyPI's 32-byte BLAKE2b.
HASHERS: dict[str, Callable[[], Any]] = {
    "sha256": hashlib.sha256,
    "blake2_256": lambda: hashlib.blake2b(digest_size=32),
    "md5": lambda: hashlib.md5(usedforsecurity=False),
}
#: Always computed: sha256 (the index's identity of a file) and blake2b-256 (PyPI's second
#: digest). md5 is insecure and no installer uses it: it is computed only when the client sends
#: an md5 digest to check (twine does), which saves a third of the hashing work otherwise.
DEFAULT_ALGORITHMS = ("sha256", "blake2_256")


def hasher(name: str) -> Any:
    """Pallet's own names first, then anything ``hashlib.new`` takes without parameters."""
    factory = HASHERS.get(name)
    return factory() if factory else hashlib.new(name)


@dataclass
class Digests:
    size: int
    hexdigests: dict[str, str]

    @property
    def sha256(self) -> str:
        return self.hexdigests["sha256"]

    @property
    def blake2_256(self) -> str | None:
        return self.hexdigests.get("blake2_256")

    @property
    def md5(self) -> str | None:
        return self.hexdigests.get("md5")

    def as_dict(self) -> dict[str, str]:
        return dict(self.hexdigests)


@dataclass
class SpooledFile:
    """A file on local disk (not yet visible anywhere) with its verified digests."""

    path: Path
    filename: str
    digests: Digests
    _owned: bool = field(default=True, repr=False)

    def discard(self) -> None:
        if self._owned:
            self.path.unlink(missing_ok=True)


class HashingSpool:
    """Async sink: ``await write(chunk)`` ... ``await finish()`` -> SpooledFile."""

    def __init__(
        self,
        directory: Path,
        filename: str,
        max_size: int,
        algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=".part")
        self._file = os.fdopen(fd, "wb", buffering=0)
        self.path = Path(name)
        self.filename = filename
        self.max_size = max_size
        self.size = 0
        # No algorithms at all: bytes whose digest nobody will ask for (a multipart part).
        names = ("sha256", *(a for a in algorithms if a != "sha256")) if algorithms else ()
        self._hashers = {name: hasher(name) for name in names}
        # sha256 runs with the file write; every other digest gets a thread of its own.
        hashers = list(self._hashers.values())
        self._sha256: Any = hashers[0] if hashers else None
        self._others: list[Any] = hashers[1:]
        self._pending: list[bytes | memoryview] = []
        self._pending_size = 0
        self._unflushed = 0
        self._inflight: list[asyncio.Future] = []

    def _write_lane(self, chunks: list[bytes | memoryview]) -> None:
        if self._sha256 is not None:
            for chunk in chunks:
                self._sha256.update(chunk)
        fd = self._file.fileno()
        write_all(fd, chunks)
        # Start writeback of what is written so far without waiting for it (DONTNEED queues the
        # dirty pages for I/O): the fsync that makes the blob durable at publish then finds
        # little left to flush, instead of stalling the response for seconds on a large file.
        self._unflushed += sum(len(c) for c in chunks)
        if self._unflushed >= WRITEBACK_EVERY and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            self._unflushed = 0

    @staticmethod
    def _hash_lane(h: Any, chunks: list[bytes | memoryview]) -> None:
        for chunk in chunks:
            h.update(chunk)

    async def write(self, chunk: bytes | memoryview) -> None:
        """Accept a chunk; it must stay unchanged until written (bytes, or a view of bytes)."""
        self.size += len(chunk)
        if self.size > self.max_size:
            raise too_large(self.max_size)
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= BATCH:
            await self._flush()

    async def _flush(self) -> None:
        if self._inflight:
            await asyncio.gather(*self._inflight)
            self._inflight = []
        if not self._pending:
            return
        data, self._pending = self._pending, []
        self._pending_size = 0
        loop = asyncio.get_running_loop()
        self._inflight = [loop.run_in_executor(_POOL, self._write_lane, data)]
        self._inflight += [
            loop.run_in_executor(_POOL, self._hash_lane, h, data) for h in self._others
        ]

    async def finish(self) -> SpooledFile:
        await self._flush()
        await self._flush()
        self._file.close()
        digests = Digests(self.size, {n: h.hexdigest() for n, h in self._hashers.items()})
        return SpooledFile(self.path, self.filename, digests)

    async def abort(self) -> None:
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
            self._inflight = []
        self._file.close()
        self.path.unlink(missing_ok=True)
