"""Digests of staged bytes, computed in one read pass."""

from __future__ import annotations

from pathlib import Path

from pallet.services import Services
from pallet.upload.spool import Digests, hasher


def stream_digests(services: Services, key: str, algorithms: tuple[str, ...]) -> Digests:
    """Digests of a stored object (sha256 + ``algorithms``), read once, kept nowhere."""
    hashers = {n: hasher(n) for n in ("sha256", *(a for a in algorithms if a != "sha256"))}
    size = 0
    for chunk in services.store.iter_bytes(key, chunk_size=2**20):
        size += len(chunk)
        for h in hashers.values():
            h.update(chunk)
    return Digests(size, {n: h.hexdigest() for n, h in hashers.items()})


def hash_local(path: Path, algorithms: tuple[str, ...]) -> Digests:
    """Digests of a local file (sha256 + ``algorithms``), read in 1 MiB pieces."""
    hashers = {n: hasher(n) for n in ("sha256", *(a for a in algorithms if a != "sha256"))}
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(2**20):
            size += len(chunk)
            for h in hashers.values():
                h.update(chunk)
    return Digests(size, {n: h.hexdigest() for n, h in hashers.items()})
