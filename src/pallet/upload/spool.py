"""Spool an incoming file to disk while hashing it, with flat memory and both cores busy.

Bytes arrive on the event loop; they are batched into ~4 MiB pieces and handed to worker threads
(hashlib and file writes release the GIL), md5 on one thread and sha256 + blake2b + the write on
another, while the loop goes on receiving the next piece. At most two pieces are in flight, so
memory stays flat whatever the file size.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass
class Digests:
    size: int
    sha256: str
    blake2_256: str
    md5: str

    def as_dict(self) -> dict[str, str]:
        return {"sha256": self.sha256, "blake2_256": self.blake2_256, "md5": self.md5}


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

    def __init__(self, directory: Path, filename: str, max_size: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=".part")
        self._file = os.fdopen(fd, "wb", buffering=0)
        self.path = Path(name)
        self.filename = filename
        self.max_size = max_size
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._blake2 = hashlib.blake2b(digest_size=32)
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._inflight: tuple[asyncio.Future, asyncio.Future] | None = None

    def _write_main(self, data: bytes) -> None:
        self._sha256.update(data)
        self._blake2.update(data)
        view = memoryview(data)
        while view:
            view = view[self._file.write(view) :]

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_size:
            raise too_large(self.max_size)
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= BATCH:
            await self._flush()

    async def _flush(self) -> None:
        if self._inflight is not None:
            await asyncio.gather(*self._inflight)
            self._inflight = None
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        loop = asyncio.get_running_loop()
        self._inflight = (
            loop.run_in_executor(_POOL, self._write_main, data),
            loop.run_in_executor(_POOL, self._md5.update, data),
        )

    async def finish(self) -> SpooledFile:
        await self._flush()
        await self._flush()
        self._file.close()
        digests = Digests(
            size=self.size,
            sha256=self._sha256.hexdigest(),
            blake2_256=self._blake2.hexdigest(),
            md5=self._md5.hexdigest(),
        )
        return SpooledFile(self.path, self.filename, digests)

    async def abort(self) -> None:
        if self._inflight is not None:
            await asyncio.gather(*self._inflight, return_exceptions=True)
            self._inflight = None
        self._file.close()
        self.path.unlink(missing_ok=True)
