"""HTTP Range (RFC 9110 §14) for downloads: single byte ranges; anything fancier is ignored,
which the RFC allows (the client then gets the whole file with 200)."""

from __future__ import annotations

import re

from pallet.core.problems import Problem

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_HUGE = 10**19  # more bytes than any file has


def _number(digits: str) -> int:
    """A byte position; a longer one than any file is clamped, never given to ``int()`` (which
    raises past 4300 digits)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) < 20 else _HUGE


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
        n = _number(last)
        if n == 0:
            raise unsatisfiable(size)
        return (max(size - n, 0), size)
    start = _number(first)
    end = min(_number(last) + 1, size) if last else size
    if start >= size or (last and _number(last) < start):
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
