"""The part of the BlobStore contract garbage collection and fsck stand on: listing a prefix
with last-modified times, and a key's last-modified time, where a move counts as storing."""

from __future__ import annotations

import os
import time

import pytest

from pallet.storage import LocalBlobStore


def test_list_keys_of_a_prefix_with_their_times(store):
    before = time.time() - 5  # S3 keeps whole seconds; the store's clock may differ a little
    for key in ("p/a", "p/b/c", "p/b/d", "q/e", "pp/f"):
        store.put_bytes(key, key.encode())
    listed = dict(store.list_keys("p"))
    assert sorted(listed) == ["p/a", "p/b/c", "p/b/d"]  # not q/, not the sibling pp/
    assert all(before <= t <= time.time() + 5 for t in listed.values())
    assert list(store.list_keys("nothing")) == []


def test_modified_is_when_the_key_was_stored(store, tmp_path):
    assert store.modified("no/such") is None
    store.put_bytes("m/a", b"x")
    stored = store.modified("m/a")
    assert stored is not None and abs(stored - time.time()) < 60
    assert dict(store.list_keys("m"))["m/a"] == pytest.approx(stored, abs=1)


def test_a_move_counts_as_storing(store, tmp_path):
    """A staged object moved to its content address must look new to garbage collection,
    however long ago its bytes arrived."""
    path = tmp_path / "old"
    path.write_bytes(b"staged long ago")
    old = time.time() - 3 * 86400
    os.utime(path, (old, old))
    store.put_file("s/staged", path)
    if isinstance(store, LocalBlobStore):
        staged = store.local_path("s/staged")
        assert staged is not None
        os.utime(staged, (old, old))  # as if it had been PUT days ago
    store.move("s/staged", "c/moved")
    assert store.modified("c/moved") > time.time() - 60
    assert store.modified("s/staged") is None
