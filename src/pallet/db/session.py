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

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TypeVar

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
    """This process's queue for the SQLite file's one writer (any engine on that file)."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    key = str(engine.url)
    with _writers_lock:
        return _writers.setdefault(key, threading.RLock())


def _begin_immediate(conn) -> None:  # noqa: ANN001
    """``BEGIN IMMEDIATE``, polled briskly while another process writes (see the module doc)."""
    conn.exec_driver_sql("PRAGMA busy_timeout=0")
    try:
        deadline, pause = time.monotonic() + BUSY_SECONDS, _SPIN_FIRST
        while True:
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except OperationalError as exc:
                if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, _SPIN_MAX)
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")


def install_sqlite_begin(engine: Engine) -> None:
    """Take over BEGIN from pysqlite (its implicit BEGIN breaks SAVEPOINT and IMMEDIATE)."""

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_conn, _record) -> None:  # noqa: ANN001
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:  # noqa: ANN001
        options = conn.get_execution_options()
        sync = "FULL" if options.get("pallet_durable", False) else "NORMAL"
        if conn.info.get("pallet_synchronous", "NORMAL") != sync:  # set per connection
            conn.exec_driver_sql(f"PRAGMA synchronous={sync}")
            conn.info["pallet_synchronous"] = sync
        if options.get("pallet_write", False):
            _begin_immediate(conn)
        else:
            conn.exec_driver_sql("BEGIN")


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
