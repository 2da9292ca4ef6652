"""Bring a staged object to local disk for verification, hashing it on the way (one pass)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pallet.services import Services
from pallet.upload.spool import Digests, hasher


def fetch_local(services: Services, key: str, algorithms: tuple[str, ...]) -> tuple[Path, Digests]:
    """Copy ``key`` into the spool directory; digests for sha256 + ``algorithms`` (none when
    empty). The caller owns (consumes or deletes) the returned file."""
    names = ("sha256", *(a for a in algorithms if a != "sha256")) if algorithms else ()
    hashers = {name: hasher(name) for name in names}
    tmp = services.settings.tmp_dir
    tmp.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp, prefix="verify-")
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in services.store.iter_bytes(key, chunk_size=2**20):
                for h in hashers.values():
                    h.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name), Digests(size, {n: h.hexdigest() for n, h in hashers.items()})


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
