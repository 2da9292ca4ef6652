"""Rendered pages, validated against the database on every request.

Each entry remembers the serial it was built at; a request first reads the current serial (one
indexed single-row query) and rebuilds on mismatch. So a publish on any replica is visible on the
very next request everywhere, while the common case costs one tiny query and no rendering.

An entry also holds its bodies compressed (gzip always, ``br`` when the ``brotli`` module is
installed), made once when it is built, in the same worker thread: a request only picks bytes.
Bodies under ``COMPRESS_MIN`` bytes stay as they are (a small page saves less than its headers).
"""

from __future__ import annotations

import asyncio
import gzip
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


class _Serialled(Protocol):
    @property
    def serial(self) -> int: ...


E = TypeVar("E", bound=_Serialled)

COMPRESS_MIN = 1024


def _gzip(body: bytes) -> bytes:
    # mtime=0: the same page always compresses to the same bytes (on every replica).
    return gzip.compress(body, compresslevel=6, mtime=0)


def _codecs() -> dict[str, Callable[[bytes], bytes]]:
    codecs: dict[str, Callable[[bytes], bytes]] = {}
    try:  # optional: used when installed, never a dependency
        import brotli  # type: ignore[import-not-found]  # noqa: PLC0415
    except ImportError:
        pass
    else:
        codecs["br"] = lambda body: brotli.compress(body, quality=5)
    codecs["gzip"] = _gzip
    return codecs


# Content codings we can send, in our order of preference at equal q.
CODECS = _codecs()
OFFERED = tuple(CODECS)
#: What a compressed body's ETag adds to the plain one's: each coding is its own representation.
ETAG_SUFFIX = {"gzip": "-gz", "br": "-br"}


def compressed(body: bytes) -> dict[str, bytes]:
    """``body`` in every coding of ``CODECS``, or nothing for a body too small to bother."""
    if len(body) < COMPRESS_MIN:
        return {}
    return {coding: encode(body) for coding, encode in CODECS.items()}


@dataclass(frozen=True)
class Rendered:
    serial: int
    html: bytes
    json: bytes
    # The bodies by content coding ("gzip", "br"); empty when not worth it, or not built.
    html_encoded: dict[str, bytes] = field(default_factory=dict, repr=False)
    json_encoded: dict[str, bytes] = field(default_factory=dict, repr=False)
    # Answers already prepared from this entry (status line aside: headers and body), keyed by
    # what chose them; filled by ``pallet.index.routes.answer`` as requests come.
    answers: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    # "s": a private project's page at ``serial``; "u": an upstream's page at its version.
    source: str = "s"

    @classmethod
    def build(cls, serial: int, html: bytes, json: bytes, source: str = "s") -> Rendered:
        """An entry with its compressed bodies: call it in a worker thread, not on the loop."""
        return cls(serial, html, json, compressed(html), compressed(json), source=source)

    @property
    def etag(self) -> str:
        return f'"{self.source}{self.serial}"'


class PageCache(Generic[E]):
    """Pages by key, each valid while the serial it was built at is current (an LRU)."""

    def __init__(self, max_entries: int = 20_000) -> None:
        self._entries: OrderedDict[str, E] = OrderedDict()
        self.max_entries = max_entries

    def holds(self, key: str) -> bool:
        """Whether a page is kept under ``key`` (at whatever serial): a cheap test first."""
        return key in self._entries

    def get(self, key: str, serial: int) -> E | None:
        entry = self._entries.get(key)
        if entry is None or entry.serial != serial:
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: E) -> None:
        current = self._entries.get(key)
        if current is not None and current.serial > entry.serial:
            return  # a slower builder must not replace a newer page
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


class Builds:
    """One build of a page at a time in this process. Requests that miss the cache together
    (the first visitors after a publish, or a new worker's first) wait for the build already
    running instead of each running the same queries and rendering in a thread of its own:
    32 such builds at once held every one of them for half a second.

    A build runs as a task of its own, so a client that goes away cancels only its wait."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[Any]] = {}

    async def run(self, key: Hashable, build: Callable[[], T]) -> T:
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(run_in_threadpool(build))
            self._running[key] = running
            running.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(running)

    def _finished(self, key: Hashable, done: asyncio.Future[Any]) -> None:
        self._running.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone before it failed
