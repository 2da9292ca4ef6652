"""The read path's per-request query, on a dedicated autocommit DBAPI connection.

It runs on the event loop thread without SQLAlchemy's per-call machinery: one indexed point
query (~20-100 us) for the current serial. On any driver error the connection is discarded and
the query retried once on a fresh one (e.g. after a PostgreSQL restart).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

_PROJECT = (
    "SELECT id, name, last_serial FROM projects WHERE normalized_name = {p} AND reserved_by IS NULL"
)
_SERIAL = "SELECT COALESCE(MAX(id), 0) FROM journal"


class SerialLookup:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        placeholder = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._project_sql = _PROJECT.format(p=placeholder)
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

    def _query(self, sql: str, params: tuple) -> Any:
        for attempt in (0, 1):
            conn = self._connection()
            try:
                cur = conn.driver_connection.cursor()
                try:
                    cur.execute(sql, params)
                    return cur.fetchone()
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

    def project(self, normalized: str) -> tuple[int, str, int] | None:
        """(id, display name, last_serial) of a visible project."""
        return self._query(self._project_sql, (normalized,))

    def index_serial(self) -> int:
        row = self._query(_SERIAL, ())
        return int(row[0]) if row else 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
