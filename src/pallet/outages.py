"""Outages of what Pallet stands on, answered as problems instead of 500s.

A database that is restarting, an object store that does not answer, a full disk: none is a bug
in the request or in Pallet. The first two pass, so they are 503 with ``Retry-After`` and the
client's retry succeeds once they are back; a full disk is 507, since retrying will not help until
an operator acts. Every writer cleans up on its way out (spools abort, transactions roll back), so
nothing half-written is left visible either way; pooled connections are checked before reuse, so
service comes back by itself.

A middleware, not exception handlers: it sees whatever a handler lets escape, whatever the
driver's exception class, and answers before the response has started. After that, the
connection is cut as before.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import exc as sa_exc
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pallet.core.problems import Problem
from pallet.http import insufficient_storage, problem_response, storage_full
from pallet.storage.base import ReportsOutages

log = logging.getLogger("pallet")

#: Seconds a client is told to wait: PostgreSQL restarts and S3 gateway blips last seconds.
RETRY_AFTER = 2

_DATABASE_DOWN = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 20:
        seen.append(current)
        current = current.__cause__ or getattr(current, "orig", None) or current.__context__
    return seen


def database_down(exc: BaseException, dbapi: Any) -> bool:
    """The database is unreachable, restarting or busy: SQLAlchemy's wrappers, or the driver's
    own errors from the read path's raw connections (``dbapi`` is the driver module)."""
    driver = tuple(
        getattr(dbapi, name) for name in ("OperationalError", "InterfaceError") if dbapi
    )
    for err in _chain(exc):
        if isinstance(err, _DATABASE_DOWN + driver):
            if getattr(dbapi, "__name__", "") == "sqlite3":
                return "locked" in str(err) or "busy" in str(err)  # others are bugs, not outages
            return True
    return False


def storage_down(exc: BaseException, store: object) -> bool:
    return isinstance(store, ReportsOutages) and any(store.unavailable(e) for e in _chain(exc))


def outage(exc: BaseException, services: Any) -> bool:
    """Whether ``exc`` says the database or the object store is away for now (work that
    failed with it is worth retrying as is)."""
    return database_down(exc, services.engine.dialect.dbapi) or storage_down(exc, services.store)


def unavailable(service: str) -> Problem:
    return Problem(
        503,
        "service-unavailable",
        "Service temporarily unavailable",
        f"The index's {service} is unreachable or busy right now; retry after {RETRY_AFTER} "
        "seconds.",
        headers={"Retry-After": str(RETRY_AFTER)},
    )


def classify(exc: BaseException, services: Any) -> Problem | None:
    if storage_full(exc):
        return insufficient_storage()
    if database_down(exc, services.engine.dialect.dbapi):
        return unavailable("database")
    if storage_down(exc, services.store):
        return unavailable("object storage")
    return None


class Outages:
    def __init__(self, app: ASGIApp, services: Any) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            problem = None if started else classify(exc, self.services)
            if problem is None:
                raise
            log.warning(
                "%s during %s %s: %s: %s",
                problem.title.lower(),
                scope["method"],
                scope["path"],
                type(exc).__name__,
                str(exc).splitlines()[0][:200] if str(exc) else "",
            )
            meta = scope.get("state", {}).get("problem_meta")
            await problem_response(problem, meta)(scope, receive, send)
