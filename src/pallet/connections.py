"""Slow or lying clients: bounds on what one connection may hold.

- Headers must arrive within ``header_timeout`` of the connection (or of the request's first
  byte on a kept-alive one): a slowloris client gets a 408 problem and is closed. uvicorn has no
  such timer, so Pallet serves with a subclass of its httptools protocol.
- Past ``max_connections`` open connections per worker, a request gets a 503 problem with
  Retry-After instead of being queued without bound.
- A request body that stalls for ``body_idle_timeout`` while the endpoint waits for it gets a
  408 problem: an ASGI middleware bounds each wait for body bytes, and only those (a download
  waiting to notice a disconnect is not a body wait).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pallet.config import Settings
from pallet.core.problems import PROBLEM_MEDIA_TYPE, Problem

_settings: Settings | None = None


def _limits() -> Settings:
    """Worker processes get their settings through ``PALLET_*`` variables, like the app."""
    global _settings
    if _settings is None:
        _settings = Settings.from_env()
    return _settings


def _raw_problem(problem: Problem, extra: dict[str, str] | None = None) -> bytes:
    body = json.dumps(problem.to_dict()).encode()
    head = [
        f"HTTP/1.1 {problem.status} {problem.title}",
        f"content-type: {PROBLEM_MEDIA_TYPE}",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{k}: {v}" for k, v in (extra or {}).items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a connection cap."""

    _header_timer: asyncio.TimerHandle | None = None

    # uvicorn narrows asyncio's BaseTransport to the Transport a stream protocol always gets.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # a kept-alive connection's next request; no-op while already armed

    def on_headers_complete(self) -> None:
        self._disarm()
        if len(self.connections) > _limits().max_connections:
            problem = Problem(
                503,
                "too-many-connections",
                "Too many connections",
                "This server holds as many connections as it allows; retry shortly.",
            )
            self._answer_and_close(problem, {"retry-after": "1"})
            return
        super().on_headers_complete()

    def _arm(self) -> None:
        if self._header_timer is None:
            timeout = _limits().header_timeout
            self._header_timer = self.loop.call_later(timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered; its body has its own bound
        problem = Problem(
            408,
            "header-timeout",
            "Request headers too slow",
            f"The request's headers did not arrive within {_limits().header_timeout:g} s.",
        )
        self._answer_and_close(problem)

    def _answer_and_close(self, problem: Problem, extra: dict[str, str] | None = None) -> None:
        if not self.transport.is_closing():
            self.transport.write(_raw_problem(problem, extra))
            self.transport.close()


class BodyIdleTimeout:
    """Bounds every wait for request-body bytes; the endpoint's read then raises a 408 problem
    (with ``connection: close``: the rest of that body will never be read)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False

        async def guarded() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.seconds)
            except TimeoutError:
                raise Problem(
                    408,
                    "body-timeout",
                    "Request body too slow",
                    f"No body bytes arrived for {self.seconds:g} s; the request was abandoned.",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, guarded, send)


def early_too_large(headers: Any, limit: int, what: str) -> Problem | None:
    """A 413 from the declared Content-Length alone, before a byte of the body is read."""
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return Problem(
            413,
            "too-large",
            "Request too large",
            f"{what} are limited to {limit} bytes; this request declares {declared}.",
            headers={"Connection": "close"},
        )
    return None



async def read_bounded(request: Any, limit: int, what: str) -> bytes:
    """A small request body (JSON, a form), refused with 413 past ``limit`` bytes: at once when
    the declared Content-Length says so, else as soon as the stream does (chunked bodies)."""
    too_large = early_too_large(request.headers, limit, what)
    if too_large is not None:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise Problem(413, "body-too-large", f"{what} too large", f"At most {limit} bytes.")
    return bytes(body)
