"""Rendered pages, validated against the database on every request.

Each entry remembers the serial it was built at; a request first reads the current serial (one
indexed single-row query) and rebuilds on mismatch. So a publish on any replica is visible on the
very next request everywhere, while the common case costs one tiny query and no rendering.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Rendered:
    serial: int
    html: bytes
    json: bytes

    @property
    def etag(self) -> str:
        return f'"s{self.serial}"'


class PageCache:
    def __init__(self, max_entries: int = 20_000) -> None:
        self._entries: OrderedDict[str, Rendered] = OrderedDict()
        self.max_entries = max_entries

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
