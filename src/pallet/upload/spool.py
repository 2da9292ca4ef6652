"""Spool an incoming file to disk while hashing it, with flat memory and both cores busy.

Bytes arrive on the event loop; they are batched into ~4 MiB pieces and handed to worker threads
(hashlib and file writes release the GIL): sha256 and the write on one thread, the other digests
on another, while the loop goes on receiving the next piece. At most two pieces are in flight, so
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

BATCH = 4 * 2**20
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pallet-spool")


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
#: Legacy uploads compute all three (twine sends md5, the JSON API shows them all).
LEGACY_ALGORITHMS = ("sha256", "blake2_256", "md5")


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
        algorithms: tuple[str, ...] = LEGACY_ALGORITHMS,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=".part")
        self._file = os.fdopen(fd, "wb", buffering=0)
        self.path = Path(name)
        self.filename = filename
        self.max_size = max_size
        self.size = 0
        names = ("sha256", *(a for a in algorithms if a != "sha256"))
        self._hashers = {name: hasher(name) for name in names}
        # Two lanes on two threads: sha256 + the file write, and every other digest.
        hashers = list(self._hashers.values())
        self._lanes = (hashers[:1], hashers[1:])
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._inflight: list[asyncio.Future] = []

    def _write_lane(self, data: bytes) -> None:
        for h in self._lanes[0]:
            h.update(data)
        view = memoryview(data)
        while view:
            view = view[self._file.write(view) :]

    def _hash_lane(self, data: bytes) -> None:
        for h in self._lanes[1]:
            h.update(data)

    async def write(self, chunk: bytes) -> None:
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
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        loop = asyncio.get_running_loop()
        self._inflight = [loop.run_in_executor(_POOL, self._write_lane, data)]
        if self._lanes[1]:
            self._inflight.append(loop.run_in_executor(_POOL, self._hash_lane, data))

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
