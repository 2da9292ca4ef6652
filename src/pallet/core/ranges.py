"""HTTP Range (RFC 9110 §14) for downloads: single byte ranges; anything fancier is ignored,
which the RFC allows (the client then gets the whole file with 200)."""

from __future__ import annotations

import re

from pallet.core.problems import Problem

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Half-open ``(start, end)`` to send, or None for the whole file; 416 when unsatisfiable."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if m is None:
        return None  # multi-range or malformed: ignoring Range is always allowed
    first, last = m.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        n = int(last)
        if n == 0:
            raise unsatisfiable(size)
        return (max(size - n, 0), size)
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size or (last and int(last) < start):
        raise unsatisfiable(size)
    return (start, end)


def unsatisfiable(size: int) -> Problem:
    return Problem(
        416,
        "range-not-satisfiable",
        "Range not satisfiable",
        f"The file has {size} bytes.",
        headers={"Content-Range": f"bytes */{size}"},
    )
