"""On SQLite, an Upload 2.0 step's short transaction runs inline on the event loop when the
writer is free, and on a worker thread when it is not (``pallet.db.session.write``). Durable
writes never run on the loop, and no commit on the loop checkpoints the WAL.

Where a statement ran is read from the statement itself: whether an event loop is running in
its thread, and which ``wal_autocheckpoint`` SQLite reports on its connection."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, update

from pallet.db import session as db
from pallet.db.models import FileUploadSession
from tests.api.v2 import Uploader
from tests.dists import make_wheel

HTTP = "http-post-bytes"


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:  # noqa: ANN001
    return f"sqlite:///{tmp_path / 'pallet.db'}"


class Where:
    """For each statement sent: its text, whether it ran on an event loop, and the WAL
    autocheckpoint in force on its connection."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        self.seen: list[tuple[str, bool, int]] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement: str, *rest) -> None:  # noqa: ANN001
        on_loop = asyncio._get_running_loop() is not None
        (pages,) = cursor.connection.execute("PRAGMA wal_autocheckpoint").fetchone()
        self.seen.append((" ".join(statement.split()).upper(), on_loop, pages))

    def of(self, prefix: str) -> set[tuple[bool, int]]:
        return {(loop, pages) for text, loop, pages in self.seen if text.startswith(prefix)}


def test_session_steps_run_on_the_loop_without_checkpoints_and_publish_off_it(
    index, tmp_path
) -> None:  # noqa: ANN001
    where = Where(index.services.engine)
    u = Uploader(index, index.token())
    session = u.open("inline", "1.0")
    u.upload(session, make_wheel(tmp_path, "inline", "1.0"), HTTP)
    u.publish(session)
    assert where.of("INSERT INTO UPLOAD_SESSIONS") == {(True, 0)}
    assert where.of("INSERT INTO FILE_UPLOAD_SESSIONS") == {(True, 0)}
    # Durable: on a worker thread, where a commit may checkpoint as SQLite does by default.
    assert where.of("INSERT INTO FILES") == {(False, 1000)}


def test_a_busy_writer_sends_the_step_to_a_worker_thread_that_waits(
    index, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    """Another process holds SQLite's write lock: the step must not wait on the loop. It goes
    to a worker thread, which waits for the lock and then succeeds."""
    where = Where(index.services.engine)
    u = Uploader(index, index.token())
    waiting = threading.Event()
    begin = db._begin_immediate

    def spied(raw, *, wait: bool = True) -> None:  # noqa: ANN001
        if wait:
            waiting.set()  # a worker thread now polls for the lock
        begin(raw, wait=wait)

    monkeypatch.setattr(db, "_begin_immediate", spied)
    other = sqlite3.connect(str(index.services.engine.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # as another worker process mid-transaction
    with ThreadPoolExecutor(1) as pool:
        opened = pool.submit(u.open, "busy", "1.0")
        assert waiting.wait(timeout=30), "the step never reached a worker thread"
        assert not opened.done(), "the step did not wait for the other process's write"
        other.execute("COMMIT")
        assert opened.result(timeout=30)["status"] == "open"
    other.close()
    assert where.of("INSERT INTO UPLOAD_SESSIONS") == {(False, 1000)}


def test_an_endpoints_read_never_writes_so_it_never_waits_for_the_writer(index, tmp_path) -> None:  # noqa: ANN001
    """Loading a file whose session has lapsed cancels it in memory. The endpoint's read must
    not write that (a read that writes waits for SQLite's writer, on the event loop), so the
    request is answered while another process holds the write lock."""
    u = Uploader(index, index.token())
    session = u.open("lapsing", "1.0")
    wheel = make_wheel(tmp_path, "lapsing", "1.0")
    fs = u.start(session, wheel, HTTP)
    with db.write_session(index.services.engine) as s:
        s.execute(update(FileUploadSession).values(expires_at=datetime(2000, 1, 1, tzinfo=UTC)))
    other = sqlite3.connect(str(index.services.engine.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # as another worker process mid-transaction
    try:
        with ThreadPoolExecutor(1) as pool:
            sent = pool.submit(u.post, fs["links"]["complete"])
            # Bounded only to fail instead of hanging: a read that writes waits 30 s here.
            answer = sent.result(timeout=10)
    finally:
        other.execute("COMMIT")
        other.close()
    assert answer.status_code == 409, answer.text  # a canceled file cannot complete
    body = index.client.get(fs["links"]["file-upload-session"], headers=u.headers).json()
    assert body["status"] == "canceled"  # written by the next write, the status request's
