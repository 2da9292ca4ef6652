"""Rendered pages, validated against the database on every request.

Each entry remembers the serial it was built at; a request first reads the current serial (one
indexed single-row query) and rebuilds on mismatch. So a publish on any replica is visible on the
very next request everywhere, while the common case costs one tiny query and no rendering.

An entry also holds its bodies compressed (gzip always, ``br`` when the ``brotli`` module is
installed), made once when it is built, in the same worker thread: a request only picks bytes.
Bodies under ``COMPRESS_MIN`` bytes stay as they are (a small page saves less than its headers).
"""

from __future__ import annotations

import gzip
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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

    @classmethod
    def build(cls, serial: int, html: bytes, json: bytes) -> Rendered:
        """An entry with its compressed bodies: call it in a worker thread, not on the loop."""
        return cls(serial, html, json, compressed(html), compressed(json))

    @property
    def etag(self) -> str:
        return f'"s{self.serial}"'


class PageCache:
    def __init__(self, max_entries: int = 20_000) -> None:
        self._entries: OrderedDict[str, Rendered] = OrderedDict()
        self.max_entries = max_entries

    def holds(self, key: str) -> bool:
        """Whether a page is kept under ``key`` (at whatever serial): a cheap test first."""
        return key in self._entries

    def get(self, key: str, serial: int) -> Rendered | None:
        entry = self._entries.get(key)
        if entry is None or entry.serial != serial:
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: Rendered) -> None:
        current = self._entries.get(key)
        if current is not None and current.serial > entry.serial:
            return  # a slower builder must not replace a newer page
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
