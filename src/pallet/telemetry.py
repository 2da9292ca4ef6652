"""What this server's processes did: requests per route, their latency, requests in flight, GC
sweeps. Recorded with ``prometheus_client``; ``/_/metrics`` (pallet.metrics) renders it.

``pallet serve --workers N`` runs N processes and a scrape reaches one of them, so per-process
counters would be wrong. ``pallet serve`` therefore hands its workers a fresh directory in
``PROMETHEUS_MULTIPROC_DIR`` before any of them starts; ``prometheus_client`` then keeps every
value in a memory-mapped file per process there, and a scrape sums the files of all workers,
live and exited (a counter of an exited worker still counts). The variable is read when
``prometheus_client`` is first imported, which is why nothing on ``pallet``'s argument-parsing
path imports this module. Without the variable (the app built in-process, as the API tests do)
the values live in this process's memory.

Labels are bounded: the route *template* (pallet.route_template), a known method or ``other``,
the status code.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pallet.route_template import route_template

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Where values are kept when several processes serve; None: this process's memory.
MULTIPROC_DIR: str | None = os.environ.get(MULTIPROC_ENV) or None

# ``*_created`` series exist only in single-process mode; leave them out there too.
disable_created_metrics()

#: In multiprocess mode the values are in files and a scrape builds a fresh registry over them;
#: this one then only names the metrics (and holds them in single-process mode).
REGISTRY = CollectorRegistry(auto_describe=True)

_LABELS = ("route", "method", "status")
#: The read path answers in about a millisecond, uploads take seconds to minutes.
_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
)  # fmt: skip

REQUESTS = Counter(
    "pallet_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    _LABELS,
    registry=REGISTRY,
)
DURATION = Histogram(
    "pallet_http_request_duration_seconds",
    "Time from request to the last byte of the response, by route template, method and status.",
    _LABELS,
    buckets=_BUCKETS,
    registry=REGISTRY,
)
IN_FLIGHT = Gauge(
    "pallet_http_requests_in_flight",
    "HTTP requests being answered now, summed over this server's live worker processes.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
GC_SWEEPS = Counter(
    "pallet_gc_sweeps", "In-server garbage-collection sweeps completed.", registry=REGISTRY
)
GC_SWEPT = Counter(
    "pallet_gc_collected",
    "What in-server garbage-collection sweeps collected, by kind (sessions_expired, "
    "files_expired, spool, ... as `pallet gc` reports them).",
    ("kind",),
    registry=REGISTRY,
)
GC_LAST = Gauge(
    "pallet_gc_last_sweep_timestamp_seconds",
    "When the last in-server sweep completed (Unix time).",
    registry=REGISTRY,
    multiprocess_mode="max",
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: (route, method, status) -> the counter and histogram children: labels() takes a lock and
#: builds a tuple on every call; this dict lookup is what the hot path pays instead.
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe(route: str, method: str, status: int, seconds: float) -> None:
    key = (route, method if method in _METHODS else "other", status)
    pair = _children.get(key)
    if pair is None:
        labels = (key[0], key[1], str(status))
        pair = _children[key] = (REQUESTS.labels(*labels), DURATION.labels(*labels))
    pair[0].inc()
    pair[1].observe(seconds)


def record_gc(counts: dict[str, int]) -> None:
    """Count one completed in-server sweep and what it collected (``pallet.gc.sweep``'s dict)."""
    GC_SWEEPS.inc()
    for kind, n in counts.items():
        if n:
            GC_SWEPT.labels(kind).inc(n)
    GC_LAST.set(time.time())


class RequestMetrics:
    """ASGI middleware: counts each HTTP request and times it until its last byte is handed to
    the server (so it is counted before the client has it all); keeps the
    in-flight gauge. It also retires this process's live gauges when the app shuts down."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, _retiring(send))
            else:
                await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        counted = False

        def count() -> None:
            nonlocal counted
            if not counted:
                counted = True
                observe(route_template(scope), scope["method"], status, time.perf_counter() - start)

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Counted before the last byte goes out: a client holding the whole answer
                # (a scrape, a test) always finds it counted.
                count()
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            IN_FLIGHT.dec()
            count()  # no last byte: an error, or a client that went away


def _retiring(send: Send) -> Send:
    async def send_lifespan(message: Message) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            mark_dead(os.getpid())
        await send(message)

    return send_lifespan


def mark_dead(pid: int) -> None:
    """Drop an exited worker's live gauges (in flight) from the sums; its counters stay."""
    if MULTIPROC_DIR is not None:
        _multiprocess.mark_process_dead(pid, MULTIPROC_DIR)


_LIVE_FILE = re.compile(r"gauge_live\w*_(\d+)\.db")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _retire_killed_workers(directory: str) -> None:
    """A worker that was killed never marked itself dead; whoever scrapes does it for it."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        match = _LIVE_FILE.fullmatch(path.name)
        if match and not _alive(int(match[1])):
            mark_dead(int(match[1]))


def exposition() -> str:
    """The process metrics in Prometheus text format: every worker's, summed, in multiprocess
    mode. Reads files: call it off the event loop."""
    if MULTIPROC_DIR is None:
        return generate_latest(REGISTRY).decode()
    _retire_killed_workers(MULTIPROC_DIR)
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry, MULTIPROC_DIR)
    return generate_latest(registry).decode()
