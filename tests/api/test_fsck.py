"""``pallet fsck``: missing, corrupt and orphan blobs, on the local backend and a real S3 store,
and ``--repair`` removing orphans only past the grace period."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import update

from pallet.db.models import File
from pallet.db.session import write_session
from pallet.leftovers import trash_key
from pallet.storage import blob_key
from tests.api.uploads import upload
from tests.api.v2 import (
    Uploader,
    cli,
    content_key,
    keys,
    leave_as_a_crash_does,
    metadata_of,
)
from tests.dists import make_wheel


def fsck(index, *args: str) -> tuple[int, dict]:  # noqa: ANN001
    code, out = cli(index, "fsck", "--json", *args)
    return code, json.loads(out)


def published(index, tmp_path, name: str, version: str = "1.0"):  # noqa: ANN001, ANN201
    folder = tmp_path / f"{name}-{version}"
    folder.mkdir()
    wheel = make_wheel(folder, name, version)
    assert upload(index.client, wheel, index.token(), name=name, version=version).status_code == 200
    return wheel


def test_a_sound_index_is_clean(store_index, tmp_path):
    index = store_index
    published(index, tmp_path, "sound")
    u = Uploader(index, index.token())
    (tmp_path / "s").mkdir()
    u.upload(u.open("staged", "1.0"), make_wheel(tmp_path / "s", "staged", "1.0"))
    code, report = fsck(index)
    assert code == 0, report
    assert report["clean"] and report["problems"] == 0
    assert (report["blobs"], report["verified"]) == (4, 4)
    assert (report["files"], report["session_files"]) == (1, 1)
    assert report["missing"] == report["mismatched"] == report["orphans"] == []
    code, text = cli(index, "fsck")
    assert code == 0 and text.strip().endswith("clean")


def test_missing_corrupt_and_orphan_blobs_are_reported(store_index, tmp_path):
    index = store_index
    store = index.services.store
    gone = published(index, tmp_path, "gone")
    store.delete(content_key(gone))
    bent = published(index, tmp_path, "bent")
    meta_key = blob_key(hashlib.sha256(metadata_of(bent)).hexdigest())
    store.put_bytes(meta_key, b"Metadata-Version: 2.1\nName: something-else\n")
    sized = published(index, tmp_path, "sized")
    with write_session(index.services.engine) as s:
        s.execute(update(File).where(File.filename == sized.name).values(size=1))
    left = leave_as_a_crash_does(index, make_wheel(tmp_path, "crashed", "1.0"))

    code, report = fsck(index)
    assert code == 1 and not report["clean"]
    assert [(m["filename"], m["role"], m["in_trash"]) for m in report["missing"]] == [
        (gone.name, "file", False)
    ]
    assert {(m["key"], m["problem"]) for m in report["mismatched"]} == {
        (meta_key, "hash"),
        (content_key(sized), "size"),
    }
    # young orphans are listed, but an upload in flight looks just like them: no problem yet
    assert sorted(o["key"] for o in report["orphans"]) == sorted(left)
    assert not any(o["removable"] for o in report["orphans"])
    assert report["problems"] == 3

    code, report = fsck(index, "--grace", "0")
    assert report["problems"] == 5 and all(o["removable"] for o in report["orphans"])
    code, text = cli(index, "fsck")
    assert code == 1
    assert f"missing   {content_key(gone)}  {gone.name} [files]" in text
    assert f"corrupt   {meta_key}" in text and "3 problem(s)" in text

    code, quick = fsck(index, "--quick")  # no reads: the corrupt blobs go unnoticed
    assert quick["verified"] == 0 and quick["mismatched"] == [] and len(quick["missing"]) == 1


def test_repair_removes_orphans_only_past_the_grace_period(store_index, tmp_path):
    index = store_index
    kept = published(index, tmp_path, "kept")
    left = leave_as_a_crash_does(index, make_wheel(tmp_path, "crashed", "1.0"))
    store = index.services.store
    store.put_bytes("staging/0123abcd/4567ef89", b"a late PUT")

    code, report = fsck(index, "--repair")
    assert code == 0, report  # young orphans: nothing to repair yet
    assert report["repaired"]["orphans_trashed"] == 0
    assert len(report["orphans"]) == 2 and len(report["staging"]) == 1
    assert set(left) <= set(keys(index, "sha256"))

    code, report = fsck(index, "--repair", "--grace", "0")
    assert code == 0, report
    assert report["repaired"]["orphans_trashed"] == 2
    assert report["repaired"]["trash_purged"] == 2
    assert report["repaired"]["staging_removed"] == 1
    assert report["orphans"] == report["staging"] == report["trash"] == []
    assert set(keys(index, "sha256")) == {
        content_key(kept),
        blob_key(hashlib.sha256(metadata_of(kept)).hexdigest()),
    }
    assert keys(index, "staging") == []


def test_repair_puts_back_a_trashed_blob_a_file_uses(store_index, tmp_path):
    index = store_index
    wheel = published(index, tmp_path, "restored")
    key = content_key(wheel)
    index.services.store.move(key, trash_key(key.rsplit("/", 1)[-1]))
    code, report = fsck(index)
    assert code == 1
    assert [m["in_trash"] for m in report["missing"]] == [True]
    assert [t["referenced"] for t in report["trash"]] == [True]
    code, report = fsck(index, "--repair")
    assert code == 0 and report["repaired"]["trash_restored"] == 1, report
    assert key in keys(index, "sha256")


def test_fsck_refuses_a_missing_database(tmp_path):
    from pallet.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["fsck", "--data-dir", str(tmp_path / "nowhere")])
    assert "no Pallet database" in str(exc.value)
