"""Digests of staged bytes, computed in one read pass, one thread per algorithm (hashlib drops
the GIL on large buffers, so sha256 and the blake2 variants run side by side, as in the spool)."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pallet.services import Services
from pallet.upload.spool import Digests, hasher

CHUNK = 4 * 2**20


def digest_chunks(chunks: Iterable[bytes], algorithms: tuple[str, ...]) -> Digests:
    """sha256 + ``algorithms`` of a stream of chunks, which are kept nowhere."""
    hashers = [(n, hasher(n)) for n in dict.fromkeys(("sha256", *algorithms))]
    size = 0
    with ThreadPoolExecutor(len(hashers), thread_name_prefix="pallet-digest") as pool:
        for chunk in chunks:
            size += len(chunk)
            for _ in pool.map(lambda h, c=chunk: h.update(c), (h for _n, h in hashers)):
                pass
    return Digests(size, {n: h.hexdigest() for n, h in hashers})


def stream_digests(services: Services, key: str, algorithms: tuple[str, ...]) -> Digests:
    """Digests of a stored object, read once."""
    return digest_chunks(services.store.iter_bytes(key, chunk_size=CHUNK), algorithms)


def read_chunks(path: Path) -> Iterable[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def hash_local(path: Path, algorithms: tuple[str, ...]) -> Digests:
    """Digests of a local file."""
    return digest_chunks(read_chunks(path), algorithms)
