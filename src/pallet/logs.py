"""One access-log line per request: method, path (never the query string, which may hold a
pre-signed signature), status, bytes, duration. Authorization headers are never logged.

Lines are written straight to stderr with a timestamp cached per second: the logging module's
per-record machinery cost a quarter of the read path's throughput.
"""

from __future__ import annotations

import logging
import sys
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_stamp: tuple[int, str] = (0, "")  # (second, its formatted time), replaced as one


def _now() -> str:
    global _stamp
    second = int(time.time())
    if second != _stamp[0]:
        _stamp = (second, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second)))
    return _stamp[1]


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("pallet")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        sent = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            client = scope.get("client")
            sys.stderr.write(
                f'{_now()} access {client[0] if client else "-"} "{scope["method"]} '
                f'{scope["path"]}" {status or 500} {sent} '
                f"{(time.perf_counter() - start) * 1000:.1f}ms\n"
            )
