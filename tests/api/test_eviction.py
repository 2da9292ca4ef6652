"""Evicting proxied files past the quota: least recently used first, never a pinned one, and
never the bytes a private file shares."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from pallet.db.models import ProxiedFile, ProxyPin
from pallet.db.session import read_session, write_session
from pallet.gc import sweep
from pallet.leftovers import is_referenced
from pallet.proxy.eviction import evict
from pallet.storage import blob_key
from tests.api.uploads import upload
from tests.dists import make_wheel


def stored_file(index, data: bytes, used_days_ago: int, *, pinned: bool = False) -> str:  # noqa: ANN001
    sha = hashlib.sha256(data).hexdigest()
    index.services.store.put_bytes(blob_key(sha), data)
    with write_session(index.services.engine) as s:
        if s.get(ProxiedFile, sha) is None:
            s.add(ProxiedFile(sha256=sha, filename=f"f{used_days_ago}.whl", project="p",
                              upstream="up", url="https://up.example/f", size=len(data),
                              stored=True, metadata_stored=False,
                              last_used=datetime.now(UTC) - timedelta(days=used_days_ago)))  # fmt: skip
        if pinned:
            s.add(ProxyPin(sha256=sha, lockfile="/srv/pylock.toml", created=datetime.now(UTC)))
    return sha


def kept(index, sha: str) -> bool:  # noqa: ANN001
    with read_session(index.services.engine) as s:
        row = s.get(ProxiedFile, sha)
        assert row is not None
        stored = row.stored
    return stored and index.services.store.size(blob_key(sha)) is not None


def test_the_least_recently_used_go_first_and_pins_stay(index):  # noqa: ANN001
    oldest_pinned = stored_file(index, b"p" * 1000, 30, pinned=True)
    old = stored_file(index, b"o" * 1000, 20)
    recent = stored_file(index, b"r" * 1000, 1)
    newest = stored_file(index, b"n" * 1000, 0)
    assert evict(index.services, is_referenced, quota=2500) == 2  # 4000 bytes: two must go
    assert kept(index, oldest_pinned) and kept(index, newest)
    assert not kept(index, old) and not kept(index, recent)
    assert evict(index.services, is_referenced, quota=2500) == 0  # it fits now


def test_only_pinned_files_left_over_the_quota_stay(index):  # noqa: ANN001
    pinned = stored_file(index, b"x" * 1000, 5, pinned=True)
    assert evict(index.services, is_referenced, quota=10) == 0
    assert kept(index, pinned)


def test_bytes_a_private_file_shares_are_not_deleted(index, tmp_path):  # noqa: ANN001
    wheel = make_wheel(tmp_path, "shared", "1.0")
    assert (
        upload(index.client, wheel, index.token(), name="shared", version="1.0").status_code == 200
    )
    sha = stored_file(index, wheel.read_bytes(), 10)
    assert evict(index.services, is_referenced, quota=1) == 1
    assert index.services.store.size(blob_key(sha)) is not None  # the private file's, still
    assert index.client.get(f"/files/{sha}/{wheel.name}").content == wheel.read_bytes()


def test_the_sweep_evicts_under_the_setting(make_index):  # noqa: ANN001
    index = make_index(upstream_quota=1500)
    stored_file(index, b"a" * 1000, 3)
    stored_file(index, b"b" * 1000, 2)
    assert sweep(index.services, scan=False)["proxied_evicted"] == 1
