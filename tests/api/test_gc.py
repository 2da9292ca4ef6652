"""Garbage collection of what crashes and late clients leave behind, on the local backend and a
real S3 store: orphan content blobs (after the grace period, through the trash), staged bytes
of expired file sessions, staged objects a late pre-signed PUT recreates. And the local signed
endpoint refusing such late PUTs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from pallet.db.models import File, FileUploadSession
from pallet.db.session import read_session, write_session
from pallet.gc import sweep
from pallet.leftovers import trash_key
from pallet.storage import blob_key
from tests.api.uploads import upload
from tests.api.v2 import (
    MULTIPART,
    Uploader,
    cli,
    content_key,
    keys,
    leave_as_a_crash_does,
    metadata_of,
)
from tests.dists import make_wheel

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def download(index, project: str, filename: str, suffix: str = "") -> bytes | None:  # noqa: ANN001
    page = index.client.get(
        f"/simple/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    ).json()
    url = next(f["url"] for f in page["files"] if f["filename"] == filename)
    r = index.client.get(f"/simple/{project}/{url}{suffix}")
    return r.content if r.status_code == 200 else None


def test_crash_leftovers_are_collected_after_the_grace_period(store_index, tmp_path):
    index = store_index
    token = index.token()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    published = make_wheel(tmp_path / "a", "keeper", "1.0")
    assert upload(index.client, published, token, name="keeper", version="1.0").status_code == 200
    staged = make_wheel(tmp_path / "b", "stager", "1.0")  # completed, not published: in use
    u = Uploader(index, token)
    session = u.open("stager", "1.0")
    u.upload(session, staged)
    orphan = make_wheel(tmp_path / "c", "crashed", "1.0")
    left = leave_as_a_crash_does(index, orphan)
    before = set(keys(index, "sha256"))
    assert set(left) <= before and len(before) == 6

    counts = sweep(index.services)  # default grace: an upload may be about to commit them
    assert counts["orphans_trashed"] == 0
    assert set(keys(index, "sha256")) == before

    counts = sweep(index.services, grace=0)
    assert counts["orphans_trashed"] == 2 and counts["trash_purged"] == 2
    assert set(keys(index, "sha256")) == before - set(left)
    assert keys(index, "trash") == []
    assert download(index, "keeper", published.name) == published.read_bytes()
    assert download(index, "keeper", published.name, ".metadata") == metadata_of(published)
    u.publish(session)  # the completed file's blobs were kept for it
    assert download(index, "stager", staged.name) == staged.read_bytes()
    assert sweep(index.services, grace=0)["orphans_trashed"] == 0  # idempotent


def test_a_trashed_blob_a_file_uses_is_put_back(store_index, tmp_path):
    """An upload that found identical bytes already stored does not store them again: had the
    collector trashed them just then, the next sweep restores them."""
    index = store_index
    wheel = make_wheel(tmp_path, "racer", "1.0")
    assert (
        upload(index.client, wheel, index.token(), name="racer", version="1.0").status_code == 200
    )
    store, key = index.services.store, content_key(wheel)
    sha = key.rsplit("/", 1)[-1]
    store.move(key, trash_key(sha))
    assert download(index, "racer", wheel.name) is None
    counts = sweep(index.services, grace=0)
    assert counts["trash_restored"] == 1 and counts["trash_purged"] == 0
    assert download(index, "racer", wheel.name) == wheel.read_bytes()
    assert keys(index, "trash") == []


def test_expired_pending_files_free_their_staged_bytes(store_index, tmp_path):
    """A pending file canceled on access when it expires keeps its staged_key: the bytes (and
    an S3 multipart upload) used to stay in the store for good. A pre-signed PUT's bytes sit
    at their content address, where identical bytes of another file could live: those go to
    the orphan collector, whose grace period they must outlast."""
    index = store_index
    (tmp_path / "kept").mkdir()
    kept = make_wheel(tmp_path / "kept", "kept", "1.0")  # an index that refers to some blob
    assert upload(index.client, kept, index.token(), name="kept", version="1.0").status_code == 200
    u = Uploader(index, index.token())
    session = u.open("lapsed", "1.0")
    wheel = make_wheel(tmp_path, "lapsed", "1.0")
    (tmp_path / "sd").mkdir()
    other = make_wheel(tmp_path / "sd", "lapsed", "1.0", tag="py2-none-any")
    fs = u.start(session, wheel)
    assert u.send(fs, wheel.read_bytes()).status_code == 200
    assert content_key(wheel) in keys(index, "sha256")
    multipart = u.start(session, other, MULTIPART)
    assert sweep(index.services, grace=0)["orphans_trashed"] == 0  # pending: still needed
    assert content_key(wheel) in keys(index, "sha256")
    with write_session(index.services.engine) as s:
        s.execute(update(FileUploadSession).values(expires_at=LONG_AGO))
    for f in (fs, multipart):  # lazily canceled on access
        body = index.client.get(f["links"]["file-upload-session"], headers=u.headers).json()
        assert body["status"] == "canceled"
    counts = sweep(index.services)  # no grace needed: the database says they are done with
    assert counts["files_freed"] == 2
    assert keys(index, "staging") == []
    assert content_key(wheel) in keys(index, "sha256")  # within the grace period
    assert sweep(index.services, grace=0)["orphans_trashed"] == 1
    assert content_key(wheel) not in keys(index, "sha256")
    assert content_key(kept) in keys(index, "sha256")
    client = getattr(index.services.store, "client", None)
    if client is not None:
        listed = client.list_multipart_uploads(Bucket=index.services.store.bucket)
        assert listed.get("Uploads", []) == []
    with read_session(index.services.engine) as s:
        assert s.execute(select(FileUploadSession.staged_key)).scalars().all() == [None, None]


def test_late_puts_are_refused_on_the_local_backend(index, tmp_path):
    """PEP 694: data URLs SHOULD stop working after cancel. They used to answer 200 and
    recreate the staged object after complete, cancel or delete."""
    u = Uploader(index, index.token())
    session = u.open("tardy", "1.0")
    wheel = make_wheel(tmp_path, "tardy", "1.0")
    data = wheel.read_bytes()
    fs = u.start(session, wheel)
    assert u.send(fs, data).status_code == 200
    assert u.complete(fs).status_code == 201
    late = u.send(fs, data)
    assert late.status_code == 403 and late.json()["type"].endswith("upload-closed")

    (tmp_path / "mp").mkdir()
    big = make_wheel(tmp_path / "mp", "tardy", "1.0", tag="py2-none-any")
    mp = u.start(session, big, MULTIPART)
    part = mp["mechanism"]["parts"][0]
    deleted = index.client.delete(mp["links"]["file-upload-session"], headers=u.headers)
    assert deleted.status_code == 204
    assert u.put(part["url"], big.read_bytes(), {}).status_code == 403

    (tmp_path / "c").mkdir()
    third = make_wheel(tmp_path / "c", "tardy", "1.0", tag="py3-none-win32")
    pending = u.start(session, third)
    u.cancel(session)
    assert u.send(pending, third.read_bytes()).status_code == 403
    assert keys(index, "staging") == []


def test_a_late_put_on_s3_is_swept(make_index, seaweedfs, monkeypatch, tmp_path):
    """A SigV4 URL cannot be revoked: the store takes a late PUT, at the file's content
    address; the orphan collector removes it once it is past the grace period."""
    for key, value in seaweedfs.env().items():
        monkeypatch.setenv(key, value)
    index = make_index(
        storage_url=f"s3://{seaweedfs.new_bucket()}?endpoint_url={seaweedfs.endpoint}"
    )
    u = Uploader(index, index.token())
    session = u.open("tardy", "1.0")
    wheel = make_wheel(tmp_path, "tardy", "1.0")
    fs = u.upload(session, wheel)
    (tmp_path / "c").mkdir()
    other = make_wheel(tmp_path / "c", "tardy", "1.0", tag="py2-none-any")
    pending = u.start(session, other)
    u.cancel(session)
    late = {content_key(wheel), content_key(other)}
    assert not late & set(keys(index, "sha256"))  # the cancel let go of the completed file
    assert u.send(fs, wheel.read_bytes()).status_code == 200  # after complete
    assert u.send(pending, other.read_bytes()).status_code == 200  # after cancel
    assert keys(index, "staging") == []
    assert late <= set(keys(index, "sha256"))
    counts = sweep(index.services)
    assert counts["files_freed"] == 1  # the canceled file still named its staged key
    assert counts["orphans_trashed"] == 0  # young: left for the grace period
    assert late <= set(keys(index, "sha256"))
    assert sweep(index.services, grace=0)["orphans_trashed"] == 2
    assert not late & set(keys(index, "sha256"))


def test_no_orphan_collection_against_a_database_without_files(index, tmp_path):
    """A store full of blobs next to a database without a single file is a wrong
    --database-url far more often than garbage."""
    leave_as_a_crash_does(index, make_wheel(tmp_path, "lonely", "1.0"))
    assert sweep(index.services, grace=0)["orphans_trashed"] == 0
    assert len(keys(index, "sha256")) == 2


def test_gc_command_takes_a_grace_period(store_index, tmp_path):
    index = store_index
    (tmp_path / "a").mkdir()
    kept = make_wheel(tmp_path / "a", "kept", "1.0")
    assert upload(index.client, kept, index.token(), name="kept", version="1.0").status_code == 200
    left = leave_as_a_crash_does(index, make_wheel(tmp_path, "crashed", "1.0"))
    code, out = cli(index, "gc", "--json")
    assert code == 0 and json.loads(out)["orphans_trashed"] == 0
    code, out = cli(index, "gc", "--grace", "0")
    assert code == 0 and "orphans_trashed=2" in out and "trash_purged=2" in out
    assert not set(left) & set(keys(index, "sha256"))
    with read_session(index.services.engine) as s:
        (sha,) = s.execute(select(File.sha256)).scalars().all()
    assert blob_key(sha) in keys(index, "sha256")


def test_expired_sessions_purge_pending_bytes(store_index, tmp_path):
    index = store_index
    u = Uploader(index, index.token())
    session = u.open("expiring", "1.0")
    wheel = make_wheel(tmp_path, "expiring", "1.0")
    fs = u.start(session, wheel, "http-post-bytes")
    assert u.send(fs, wheel.read_bytes()).status_code == 204
    assert len(keys(index, "staging")) == 1
    from pallet.db.models import UploadSession

    with write_session(index.services.engine) as s:
        s.execute(update(UploadSession).values(expires_at=LONG_AGO - timedelta(days=1)))
    counts = sweep(index.services)
    assert counts["sessions_expired"] == 1
    assert keys(index, "staging") == []


def test_the_in_server_sweep_collects_orphans(make_index, tmp_path):
    """Each server sweeps by itself (its first sweep lists the store, then hourly)."""
    import os
    import time

    index = make_index(gc_interval=1, gc_grace=3600)
    (tmp_path / "a").mkdir()
    kept = make_wheel(tmp_path / "a", "kept", "1.0")
    assert upload(index.client, kept, index.token(), name="kept", version="1.0").status_code == 200
    left = leave_as_a_crash_does(index, make_wheel(tmp_path, "crashed", "1.0"))
    for key in left:  # left by a crash a day ago
        path = index.services.store.local_path(key)
        os.utime(path, (time.time() - 86400, time.time() - 86400))
    deadline = time.monotonic() + 60
    while set(left) & set(keys(index, "sha256")):  # only the server's own sweep removes them
        assert time.monotonic() < deadline, "no sweep collected the orphans"
        time.sleep(0.1)
    # held in the trash for another grace period, then deleted
    assert keys(index, "trash") == sorted(trash_key(k.rsplit("/", 1)[-1]) for k in left)
    assert download(index, "kept", kept.name) == kept.read_bytes()


def test_unfinished_transfers_of_large_blobs_are_aborted(make_index, seaweedfs, monkeypatch):
    """A process killed while a large blob goes to its content address (or to the trash) as a
    managed multipart transfer leaves the multipart upload behind, outside ``staging/``."""
    for key, value in seaweedfs.env().items():
        monkeypatch.setenv(key, value)
    index = make_index(
        storage_url=f"s3://{seaweedfs.new_bucket()}?endpoint_url={seaweedfs.endpoint}"
    )
    store = index.services.store
    for key in (blob_key("ab" * 32), "trash/" + "cd" * 32):
        store.create_multipart(key)
    young = sweep(index.services, scan=False)
    assert young["abandoned_objects"] == 0  # within the grace period: maybe still running

    def unfinished() -> int:
        return sum(len(store.stale_multipart(p, float("inf"))) for p in ("sha256", "trash"))

    assert unfinished() == 2
    assert sweep(index.services, grace=0, scan=False)["abandoned_objects"] == 2
    assert unfinished() == 0
