"""``write_all``: every byte in order, whatever mix of chunks (empty ones included, which a
writev that writes nothing must not be taken for a full disk)."""

from __future__ import annotations

import os
from pathlib import Path

from pallet.storage.local import IOV_BATCH, write_all


def test_every_chunk_in_order_empty_ones_included(tmp_path: Path) -> None:
    chunks: list[bytes | memoryview] = [b"", os.urandom(70_000), b"", memoryview(b"abc"), b""]
    chunks += [bytes([i % 256]) * (i % 7) for i in range(IOV_BATCH * 2 + 3)]  # past one writev
    target = tmp_path / "out"
    with open(target, "wb", buffering=0) as out:
        write_all(out.fileno(), chunks)
        write_all(out.fileno(), [b""])
    assert target.read_bytes() == b"".join(bytes(c) for c in chunks)
