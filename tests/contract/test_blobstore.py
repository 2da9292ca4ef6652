"""The BlobStore contract. Every backend runs this same suite (the ``store`` fixture is
parametrised by backend), so they are interchangeable behind the interface."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pallet.storage import blob_key
from pallet.storage.base import check_key


def _file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / f"src-{hashlib.sha256(data).hexdigest()[:8]}"
    path.write_bytes(data)
    return path


def test_put_file_then_read_back(store, tmp_path):
    data = os.urandom(300_000)
    key = blob_key(hashlib.sha256(data).hexdigest())
    src = _file(tmp_path, data)
    store.put_file(key, src)
    assert not src.exists()  # consumed
    assert store.size(key) == len(data)
    with store.open(key) as f:
        assert f.read() == data
    assert b"".join(store.iter_bytes(key, chunk_size=65536)) == data


def test_ranges(store):
    data = bytes(range(256)) * 10
    store.put_bytes("k/range", data)
    assert b"".join(store.iter_bytes("k/range", 100, 200)) == data[100:200]
    assert b"".join(store.iter_bytes("k/range", 2500)) == data[2500:]
    assert b"".join(store.iter_bytes("k/range", 0, 7, chunk_size=3)) == data[:7]


def test_missing_keys(store):
    assert store.size("no/such") is None
    with pytest.raises(FileNotFoundError):
        store.open("no/such")
    store.delete("no/such")  # deleting an absent key is fine


def test_overwrite_is_atomic_and_delete(store, tmp_path):
    store.put_bytes("a/b", b"one")
    store.put_bytes("a/b", b"two")
    with store.open("a/b") as f:
        assert f.read() == b"two"
    store.delete("a/b")
    assert store.size("a/b") is None


def test_large_blob_streams_in_bounded_chunks(store, tmp_path):
    src = tmp_path / "large"
    with open(src, "wb") as f:
        for _ in range(40):
            f.write(os.urandom(2**20))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    store.put_file(blob_key(digest), src)
    h = hashlib.sha256()
    biggest = 0
    for chunk in store.iter_bytes(blob_key(digest), chunk_size=256 * 1024):
        biggest = max(biggest, len(chunk))
        h.update(chunk)
    assert h.hexdigest() == digest
    assert biggest <= 256 * 1024


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "/abs", "a//b", "a/./b", "a/../b", "", "a\0b", "a\\b", ".hidden"]
)
def test_hostile_keys_are_refused(store, key):
    with pytest.raises(ValueError):
        check_key(key)
    with pytest.raises(ValueError):
        store.put_bytes(key, b"x")


def test_health_check(store):
    store.check()


def test_blob_key_shape():
    digest = hashlib.sha256(b"x").hexdigest()
    assert blob_key(digest) == f"sha256/{digest[:2]}/{digest[2:4]}/{digest}"
    with pytest.raises(ValueError):
        blob_key("../../x")


def test_staged_put_without_flush_reads_back(store, tmp_path):
    src = _file(tmp_path, b"staged bytes")
    store.put_file("staging/s/f", src, durable=False)
    assert b"".join(store.iter_bytes("staging/s/f")) == b"staged bytes"


def test_open_is_seekable_for_archive_inspection(store, tmp_path):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/METADATA", "Name: x\n")
        zf.writestr("a/big.bin", os.urandom(200_000))
    store.put_bytes("k/zip", buf.getvalue())
    with store.open("k/zip") as f, zipfile.ZipFile(f) as zf:
        assert zf.read("a/METADATA") == b"Name: x\n"
