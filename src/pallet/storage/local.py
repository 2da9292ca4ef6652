"""Local-folder backend: write to a temp name, fsync, rename. Readers never see partial blobs."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from pallet.storage.base import check_key

IOV_BATCH = 512  # below every platform's IOV_MAX


def write_all(fd: int, chunks: Sequence[bytes | memoryview]) -> None:
    """Write ``chunks`` to ``fd`` in order, a few syscalls for many chunks (``writev`` may take
    part of what it is given, and is called again for the rest)."""
    for i in range(0, len(chunks), IOV_BATCH):
        views = [memoryview(c) for c in chunks[i : i + IOV_BATCH] if len(c)]
        while views:
            written = os.writev(fd, views)
            if not written:
                raise OSError(errno.EIO, "the file took no bytes")
            while views and written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            if views and written:
                views[0] = views[0][written:]


class LocalBlobStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, path: Path, *, durable: bool = True) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if durable:
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        try:
            os.replace(path, dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            tmp = self._tmp_copy(path)
            os.replace(tmp, dest)
            os.unlink(path)
        # A rename keeps the source's mtime; garbage collection reads the mtime as "stored at
        # this key at", so a staged object moved to its content address must look new.
        os.utime(dest)
        if durable:
            self._fsync_dir(dest.parent)

    def _tmp_copy(self, path: Path) -> Path:
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:  # a full disk above all: leave no partial copy behind
            os.unlink(tmp)
            raise
        return Path(tmp)

    def put_bytes(self, key: str, data: bytes, *, durable: bool = True) -> None:
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            self.put_file(key, Path(tmp), durable=durable)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def open(self, key: str, *, size: int | None = None) -> BinaryIO:
        return open(self._path(key), "rb")

    def iter_bytes(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = 256 * 1024
    ) -> Iterator[bytes]:
        with self.open(key) as f:
            f.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                chunk = f.read(chunk_size if remaining is None else min(chunk_size, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def move(self, src: str, dst: str) -> None:
        self.put_file(dst, self._path(src))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def modified(self, key: str) -> float | None:
        """When the blob was stored at ``key`` (epoch seconds), or None when absent."""
        try:
            return self._path(key).stat().st_mtime
        except FileNotFoundError:
            return None

    def list_keys(self, prefix: str) -> Iterator[tuple[str, float]]:
        """(key, modified time) of blobs under ``prefix`` (for garbage collection)."""
        base = self.root / prefix
        if base.is_dir():
            for path in base.rglob("*"):
                try:
                    st = path.stat()
                except FileNotFoundError:  # removed meanwhile (a concurrent move or delete)
                    continue
                if stat.S_ISREG(st.st_mode):
                    yield str(path.relative_to(self.root)), st.st_mtime

    def flush(self) -> None:
        # One filesystem-wide flush for a batch costs what one fsync per file would, once.
        os.sync()

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise OSError(f"blob folder {self.root} is not writable")

    @staticmethod
    def _fsync_dir(directory: Path) -> None:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
