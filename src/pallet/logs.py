"""One access-log line per request: method, path (never the query string, which may hold a
pre-signed signature), status, bytes, duration. Authorization headers and cookies are never
logged, and a stage token in a path (``/stage/{token}/...``, a capability) is masked.

Two formats (``log_format``). ``text``: lines written straight to stderr with a timestamp cached
per second: the logging module's per-record machinery cost a quarter of the read path's
throughput. ``json``: one JSON object per line, for log pipelines: access lines (time, method,
path, route template, status, bytes, duration_ms, client, replica) and log records (time, level,
logger, message, exception text), uvicorn's own records included.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `pallet serve`'s parent process configures logging without the web stack
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOG_FORMATS = ("text", "json")
MASK = "***"

_stamp: tuple[int, str] = (0, "")  # (second, its formatted time), replaced as one
_iso: tuple[int, str] = (0, "")  # the same, ISO 8601 for JSON lines


def _now() -> str:
    global _stamp
    second = int(time.time())
    if second != _stamp[0]:
        _stamp = (second, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second)))
    return _stamp[1]


def _iso_time(now: float) -> str:
    """``2025-01-31T12:00:00.123Z``; the seconds part formatted once per second."""
    global _iso
    second = int(now)
    if second != _iso[0]:
        _iso = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_iso[1]}.{int((now - second) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line: time, level, logger, message, and exception (its
    traceback text) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out)


def _formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")


def configure_logging(log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter(log_format))
    root = logging.getLogger("pallet")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def uvicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """uvicorn's ``log_config`` for ``log_format``; None keeps uvicorn's own (text)."""
    if log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "pallet.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }


def _masked(scope: Scope) -> str:
    """The path, without a stage token (the route's ``{token}`` parameter) in it."""
    path: str = scope["path"]
    params = scope.get("path_params")
    if params and "token" in params:
        path = path.replace(str(params["token"]), MASK)
    return path


class AccessLog:
    def __init__(self, app: ASGIApp, *, log_format: str = "text", replica: str = "") -> None:
        from pallet.route_template import route_template  # imports starlette: not at the top

        self.route_template = route_template
        self.app = app
        self.json = log_format == "json"
        self.replica = replica

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        sent = 0
        written = False

        def write() -> None:
            nonlocal written
            if written:
                return
            written = True
            client = scope.get("client")
            if self.json:
                self._json(scope, client, status or 500, sent, time.perf_counter() - start)
            else:
                sys.stderr.write(
                    f'{_now()} access {client[0] if client else "-"} "{scope["method"]} '
                    f'{_masked(scope)}" {status or 500} {sent} '
                    f"{(time.perf_counter() - start) * 1000:.1f}ms\n"
                )

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if not message.get("more_body"):
                    # Written before the last byte goes out, as requests are counted
                    # (telemetry): a client holding the whole answer finds its line logged.
                    write()
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            write()  # no last byte: an error, or a client that went away

    def _json(self, scope: Scope, client: Any, status: int, sent: int, seconds: float) -> None:
        line = json.dumps(
            {
                "time": _iso_time(time.time()),
                "logger": "pallet.access",
                "method": scope["method"],
                "path": _masked(scope),
                "route": self.route_template(scope),
                "status": status,
                "bytes": sent,
                "duration_ms": round(seconds * 1000, 3),
                "client": client[0] if client else None,
                "replica": self.replica,
            }
        )
        sys.stderr.write(line + "\n")
