"""Transactions. On SQLite, write transactions start with ``BEGIN IMMEDIATE`` so two worker
processes never both read-then-upgrade (which SQLite answers with an immediate, unretried
SQLITE_BUSY); PostgreSQL relies on constraints and retries instead.

Durability: SQLite runs WAL with ``synchronous=NORMAL``, where a commit is not flushed to disk
(a power cut may lose the last ones, never corrupt). Transactions that make something visible
for good (a publish, an upload, a yank, a token) are ``durable``: they commit under
``synchronous=FULL``, which flushes the WAL, and with it every commit before it. The steps of an
Upload 2.0 session in between need not pay for a flush each. PostgreSQL commits durably always.

Waiting for SQLite's one writer: threads of one process queue on a lock (handed over at once),
and a process waiting for another polls ``BEGIN IMMEDIATE`` every fraction of a millisecond.
SQLite's own busy handler sleeps 1, 2, 5, 10... ms between tries, which turned sub-millisecond
waits behind another writer into many milliseconds per request once uploads ran in parallel.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TypeVar

from anyio import to_thread
from sqlalchemy import Engine, event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

T = TypeVar("T")

#: How long a write transaction waits for another process's (as the engine's busy_timeout).
BUSY_SECONDS = 30.0
_SPIN_FIRST, _SPIN_MAX = 0.0001, 0.002  # seconds between tries: from 0.1 ms, doubling to 2 ms
_writers: dict[str, threading.RLock] = {}
_writers_lock = threading.Lock()


def _writer(engine: Engine) -> AbstractContextManager[object]:
    return _sqlite_writer(engine) if engine.dialect.name == "sqlite" else nullcontext()


def _sqlite_writer(engine: Engine) -> threading.RLock:
    """This process's queue for the SQLite file's one writer (any engine on that file)."""
    with _writers_lock:
        return _writers.setdefault(str(engine.url), threading.RLock())


def _begin_immediate(raw: sqlite3.Connection, *, wait: bool = True) -> None:
    """``BEGIN IMMEDIATE``, polled briskly while another process writes (see the module doc).
    Without ``wait``, one try: "database is locked" when another process writes."""
    raw.execute("PRAGMA busy_timeout=0")
    try:
        deadline, pause = time.monotonic() + BUSY_SECONDS, _SPIN_FIRST
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not wait or "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, _SPIN_MAX)
    finally:
        raw.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")


_AUTOCHECKPOINT = "1000"  # pages: SQLite's default
_DEFAULT = {"synchronous": "NORMAL", "wal_autocheckpoint": _AUTOCHECKPOINT}  # as connected


def install_sqlite_begin(engine: Engine) -> None:
    """Take over BEGIN from pysqlite (its implicit BEGIN breaks SAVEPOINT and IMMEDIATE)."""

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_conn, _record) -> None:  # noqa: ANN001
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:  # noqa: ANN001
        # Straight to the driver: these run on every transaction, and SQLAlchemy's statement
        # machinery would cost more than SQLite itself.
        raw = conn.connection.driver_connection
        options = conn.get_execution_options()
        inline = options.get("pallet_inline", False)
        sync = "FULL" if options.get("pallet_durable", False) else "NORMAL"
        # A commit that crosses the WAL's size checkpoints it, flushing the database file: never
        # on the event loop. Worker-thread writes (every complete and publish) checkpoint.
        checkpoint = "0" if inline else _AUTOCHECKPOINT
        for pragma, value in (("synchronous", sync), ("wal_autocheckpoint", checkpoint)):
            if conn.info.get(f"pallet_{pragma}", _DEFAULT[pragma]) != value:  # per connection
                raw.execute(f"PRAGMA {pragma}={value}")
                conn.info[f"pallet_{pragma}"] = value
        try:
            if options.get("pallet_write", False):
                _begin_immediate(raw, wait=not inline)
            else:
                raw.execute("BEGIN")
        except sqlite3.OperationalError as exc:
            raise OperationalError("BEGIN", None, exc) from exc


@contextmanager
def write_session(engine: Engine, *, durable: bool = False) -> Iterator[Session]:
    bound = engine.execution_options(pallet_write=True, pallet_durable=durable)
    with _writer(engine), Session(bound, expire_on_commit=False) as s:
        with s.begin():
            yield s


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        with s.begin():
            yield s


def retrying(
    engine: Engine, work: Callable[[Session], T], attempts: int = 4, *, durable: bool = False
) -> T:
    """Run ``work`` in a write transaction, re-running it when a concurrent writer won a race
    (unique violation) or the database was momentarily locked."""
    for attempt in range(attempts):
        try:
            with write_session(engine, durable=durable) as s:
                return work(s)
        except (IntegrityError, OperationalError):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


# --- from the event loop ------------------------------------------------------------------
#
# A handler's transaction of a few rows costs SQLite less than the hop to a worker thread and
# back (measured: the hop about doubled the server's CPU per Upload 2.0 request). So on SQLite
# a short transaction runs inline on the event loop, the way the read path's freshness check
# does (``pallet.index.lookup``), but only when it cannot wait: a write goes inline when this
# process's writer queue and the file's write lock are both free at once, and otherwise (or on
# any database error) it goes to a worker thread, which waits and retries as ``retrying`` does.
# A durable write flushes to disk, and PostgreSQL is a network round trip: both always go to a
# worker thread, never onto the loop. Nor does an inline commit ever checkpoint the WAL (see
# ``_begin``): the next worker-thread write does.


def inline_capable(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


async def read(engine: Engine, work: Callable[[Session], T]) -> T:
    """``work`` in a read-only transaction: inline on SQLite (a WAL reader never waits for a
    writer, nor checkpoints), on a worker thread otherwise."""
    if inline_capable(engine):
        return _read_only(engine, work)
    return await to_thread.run_sync(_read_only, engine, work)


def _read_only(engine: Engine, work: Callable[[Session], T]) -> T:
    """Whatever ``work`` changes on the objects it loads is never written: a read that began
    to write would wait for SQLite's writer, which must never happen on the event loop. The
    objects keep what was loaded (they leave the session before it rolls back)."""
    with Session(engine, expire_on_commit=False, autoflush=False) as s:
        s.begin()
        try:
            return work(s)
        finally:
            s.expunge_all()
            s.rollback()


async def write(
    engine: Engine, work: Callable[[Session], T], *, inline: bool = True, durable: bool = False
) -> T:
    """``retrying(engine, work)`` for a handler on the event loop (see above). ``inline=False``:
    ``work`` does I/O besides SQLite (the object store), so it never runs on the loop."""
    if inline and not durable and inline_capable(engine):
        lock = _sqlite_writer(engine)
        if lock.acquire(blocking=False):
            try:
                bound = engine.execution_options(pallet_write=True, pallet_inline=True)
                with Session(bound, expire_on_commit=False) as s, s.begin():
                    return work(s)
            except (IntegrityError, OperationalError):
                pass  # busy, or a race lost: the worker thread waits and retries
            finally:
                lock.release()
    return await to_thread.run_sync(lambda: retrying(engine, work, durable=durable))
