"""Fault injection, a test hook (``PALLET_INJECT_503``, ``pallet serve --inject-503``): never for
production.

Clients must survive a 503 at any step of an upload (retry, resume, or give up cleanly), and the
only faithful way to test that against a real server process is to make the server fail on cue.
A SPEC is ``METHOD:REGEX[,METHOD:REGEX...]``; each item answers the first request in this process
whose method matches (``*`` = any) and whose path matches ``re.search(REGEX)`` with a ``503``
problem document, once. The app is not called, so the request body is never read and nothing
changes server-side: a retry is always safe. Regexes cannot contain commas. With several worker
processes each process keeps its own count.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from pallet.core.problems import Problem
from pallet.core.upload2 import META
from pallet.http import problem_response

log = logging.getLogger("pallet")

_METHOD = re.compile(r"\*|[A-Za-z]+")


@dataclass(frozen=True)
class Fault:
    method: str  # upper case, or "*"
    path: re.Pattern[str]

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method.upper()) and self.path.search(path) is not None


def parse_spec(spec: str) -> list[Fault]:
    """``"POST:/complete$,PUT:/_/blobs/"`` -> faults; ValueError naming the bad item."""
    faults = []
    for item in spec.split(","):
        method, sep, pattern = item.strip().partition(":")
        if not sep or not _METHOD.fullmatch(method) or not pattern:
            raise ValueError(
                f"inject-503: bad item {item.strip()!r}; expected METHOD:REGEX "
                "(METHOD a name or '*', REGEX not empty), items separated by commas"
            )
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"inject-503: bad regex {pattern!r}: {exc}") from None
        faults.append(Fault(method.upper(), compiled))
    return faults


class FaultInjection:
    """Pure ASGI, so a matched request never reaches routing, body parsing or the endpoint."""

    def __init__(self, app: ASGIApp, faults: list[Fault], upload_root: str = "") -> None:
        self.app = app
        self.pending = list(faults)
        self.upload_root = upload_root
        self.lock = threading.Lock()  # the check-and-remove is atomic across threads too

    def _take(self, method: str, path: str) -> bool:
        with self.lock:
            for fault in self.pending:
                if fault.matches(method, path):
                    self.pending.remove(fault)
                    return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.pending
            or not self._take(scope["method"], scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]  # never the query string: it may hold a pre-signed signature
        log.warning("injected 503 for %s %s", scope["method"], path)
        problem = Problem(
            503,
            "injected-fault",
            "Service unavailable (injected)",
            f"A test hook (inject-503) refused {scope['method']} {path}; retry.",
            headers={"Retry-After": "0"},
        )
        meta = META if self.upload_root and path.startswith(self.upload_root) else None
        await problem_response(problem, meta)(scope, receive, send)
