"""Range headers with numbers longer than any file (and than int() converts): clamped, never a
500. RFC 9110 byte positions have no length limit."""

from __future__ import annotations

import pytest

from pallet.core.problems import Problem
from pallet.core.ranges import parse_range

HUGE = "9" * 5000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"bytes=0-{HUGE}", (0, 100)),
        (f"bytes=10-{HUGE}", (10, 100)),
        (f"bytes=-{HUGE}", (0, 100)),  # the last "all" bytes: the whole file
        ("bytes=0-18446744073709551615", (0, 100)),  # 2**64 - 1, as some clients send
        ("bytes=" + "0" * 5000 + "5-" + "0" * 5000 + "9", (5, 10)),  # leading zeros
    ],
)
def test_huge_positions_are_clamped(header: str, expected: tuple[int, int]):
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", [f"bytes={HUGE}-", f"bytes={HUGE}-{HUGE}"])
def test_a_start_beyond_any_file_is_unsatisfiable(header: str):
    with pytest.raises(Problem) as exc:
        parse_range(header, 100)
    assert exc.value.status == 416
