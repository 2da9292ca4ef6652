"""The read path's per-request freshness check: the serial a cached page must match.

Every page request asks the database for the current serial (a project's ``last_serial``, or the
index's newest journal id), so a publish through any replica shows on the very next request
everywhere. How that query runs depends on where the database is:

- **SQLite** is a file on this machine: the indexed point query takes ~20-100 us, less than a
  hop to a thread would, so it runs inline on a dedicated autocommit connection.
- **PostgreSQL** is across a network: a round trip of 0.5-1 ms on the event loop would stall
  every other request meanwhile. There the checks are *batched*: requests that arrive while a
  query is in flight wait for the next one, which asks for all their names at once, in a
  dedicated thread. One round trip serves every request that arrived during the previous one,
  and each answer is still read after its request arrived, so freshness is exactly as strict.
  Two batches may be in flight at once (two threads, two connections), so a request that just
  missed one waits for a round trip, not for two.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine

Row = tuple[int, str, int]  # (id, display name, last_serial) of a visible project

_PROJECT = (
    "SELECT id, name, last_serial FROM projects WHERE normalized_name = {p} AND reserved_by IS NULL"
)
_PROJECTS = (
    "SELECT normalized_name, id, name, last_serial FROM projects "
    "WHERE normalized_name = ANY(%s) AND reserved_by IS NULL"
)
_SERIAL = "SELECT COALESCE(MAX(id), 0) FROM journal"
# An upstream's page as the proxy keeps it, and whether routing may still send the name there:
# (stored version, a project here has the name, a claim covers it), in one query.
_UPSTREAM = (
    "SELECT v.version, EXISTS (SELECT 1 FROM projects WHERE normalized_name = {p}), "
    "EXISTS (SELECT 1 FROM name_claims WHERE pattern = {p} "
    "OR (prefix AND substr({p}, 1, length(pattern) + 1) = pattern || '-')) "
    "FROM proxied_pages v WHERE v.normalized_name = {p}"
)

#: Batches in flight at once (each has its own thread and connection).
IN_FLIGHT = 2


class _Connection:
    """One raw autocommit DBAPI connection, replaced after any driver error (e.g. after a
    PostgreSQL restart) with the query retried once on the fresh one."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None:
            conn = self.engine.raw_connection()
            dbapi = conn.driver_connection
            assert dbapi is not None  # None only once the connection is closed or invalidated
            if self.engine.dialect.name == "postgresql":
                dbapi.autocommit = True
            self._conn = conn
        return self._conn

    def fetch(self, sql: str, params: tuple, *, many: bool = False) -> Any:
        for attempt in (0, 1):
            conn = self._connection()
            try:
                cur = conn.driver_connection.cursor()
                try:
                    cur.execute(sql, params)
                    return cur.fetchall() if many else cur.fetchone()
                finally:
                    cur.close()
            except Exception:
                self._conn = None
                try:
                    conn.invalidate()
                except Exception:  # noqa: S110 - best effort
                    pass
                if attempt:
                    raise
        return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Batch:
    """The names (and whether the index serial) that requests waiting together asked for."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.names: set[str] = set()
        self.serial = False
        self.loop = loop
        self.answer: asyncio.Future[tuple[dict[str, Row], int]] = loop.create_future()


class SerialLookup:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.batched = engine.dialect.name == "postgresql"
        placeholder = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._project_sql = _PROJECT.format(p=placeholder)
        self._upstream_sql = _UPSTREAM.format(p=placeholder)
        self._inline = _Connection(engine)
        self._lock = threading.Lock()  # the inline connection is shared by request threads
        # Batched mode: a thread and a connection per batch in flight; the batching state
        # lives on the event loop's thread.
        self._threads: ThreadPoolExecutor | None = None
        self._connections = [_Connection(engine) for _ in range(IN_FLIGHT)]
        self._idle = list(self._connections)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next: _Batch | None = None

    # Synchronous API, for callers already off the event loop (and SQLite's inline path).

    def project(self, normalized: str) -> Row | None:
        with self._lock:
            return self._inline.fetch(self._project_sql, (normalized,))

    def upstream_page(self, normalized: str) -> tuple[int, bool, bool] | None:
        """(version, exists here, claimed) of a proxied page, for the read path's fast answer
        (SQLite's inline path only: the caller checks ``batched``)."""
        with self._lock:
            row = self._inline.fetch(self._upstream_sql, (normalized,) * 4)
        return None if row is None else (int(row[0]), bool(row[1]), bool(row[2]))

    def index_serial(self) -> int:
        with self._lock:
            row = self._inline.fetch(_SERIAL, ())
        return int(row[0]) if row else 0

    # The read path's API: never waits on the network on the event loop.

    async def project_async(self, normalized: str) -> Row | None:
        if not self.batched:
            return self.project(normalized)
        batch = self._join()
        batch.names.add(normalized)
        rows, _ = await asyncio.shield(batch.answer)
        return rows.get(normalized)

    async def index_serial_async(self) -> int:
        if not self.batched:
            return self.index_serial()
        batch = self._join()
        batch.serial = True
        _, serial = await asyncio.shield(batch.answer)
        return serial

    def _join(self) -> _Batch:
        """The batch this request waits for: never one already in flight, whose query may have
        been sent before the request arrived."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests start several): fresh state
            self._loop, self._next = loop, None
            self._idle = list(self._connections)
        if self._next is None:
            self._next = _Batch(loop)
            if self._idle:
                loop.call_soon(self._launch)  # after this request has named what it needs
        return self._next

    def _launch(self) -> None:
        if self._next is None or not self._idle:
            return
        batch, self._next = self._next, None
        if self._threads is None:
            self._threads = ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="pallet-serials")
        conn = self._idle.pop()
        done = self._threads.submit(self._run, conn, sorted(batch.names), batch.serial)
        done.add_done_callback(lambda f: self._hand_back(batch, conn, f))

    def _hand_back(self, batch: _Batch, conn: _Connection, done: Future) -> None:
        try:
            batch.loop.call_soon_threadsafe(self._finish, batch, conn, done)
        except RuntimeError:  # that event loop has closed: nobody waits any more
            pass

    def _run(self, conn: _Connection, names: list[str], serial: bool) -> tuple[dict[str, Row], int]:
        rows: dict[str, Row] = {}
        if names:
            for name, *row in conn.fetch(_PROJECTS, (names,), many=True):
                rows[name] = (row[0], row[1], row[2])
        index = 0
        if serial:
            found = conn.fetch(_SERIAL, ())
            index = int(found[0]) if found else 0
        return rows, index

    def _finish(self, batch: _Batch, conn: _Connection, done: Future) -> None:
        if not batch.answer.cancelled():
            error = done.exception()
            if error is not None:
                batch.answer.set_exception(error)
                batch.answer.exception()  # retrieved: waiters that left must not log it
            else:
                batch.answer.set_result(done.result())
        if batch.loop is not self._loop:
            return
        self._idle.append(conn)
        self._launch()

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True)
            self._threads = None
        self._inline.close()
        for conn in self._connections:
            conn.close()
