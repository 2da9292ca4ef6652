"""Pure helpers of the web layer: negotiation, ranges, credentials, sizes."""

from __future__ import annotations

import base64

import pytest

from pallet.auth.credentials import token_from_authorization
from pallet.config import Settings, parse_size
from pallet.core.problems import Problem
from pallet.core.ranges import parse_range
from pallet.index import negotiate


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("", negotiate.TEXT_HTML),
        ("text/*", negotiate.TEXT_HTML),
        ("application/*", negotiate.HTML),
        (f"{negotiate.JSON};q=0", None),
        (f"{negotiate.JSON};q=0.5, text/html;q=0.4", negotiate.JSON),
        (f"{negotiate.JSON};q=bogus, text/html;q=0.1", negotiate.TEXT_HTML),
        ("image/png", None),
    ],
)
def test_negotiation(accept, chosen):
    assert negotiate.choose(accept) == chosen


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("bytes=0-9", 100, (0, 10)),
        ("bytes=90-", 100, (90, 100)),
        ("bytes=90-500", 100, (90, 100)),
        ("bytes=-10", 100, (90, 100)),
        ("bytes=-500", 100, (0, 100)),
        ("bytes=0-1,5-6", 100, None),
        ("items=0-1", 100, None),
        ("bytes=-", 100, None),
    ],
)
def test_ranges(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=5-2", "bytes=-0"])
def test_unsatisfiable_ranges(header):
    with pytest.raises(Problem) as exc:
        parse_range(header, 100)
    assert exc.value.status == 416


def _basic(value: str) -> str:
    return "Basic " + base64.b64encode(value.encode()).decode()


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        (_basic("__token__:pallet_x_y"), "pallet_x_y"),
        (_basic("__token__:"), None),
        (_basic("no-colon"), None),
        ("Basic !!!notbase64", None),
        ("Digest foo", None),
    ],
)
def test_credentials(header, token):
    assert token_from_authorization(header) == token


def test_sizes_and_env():
    assert parse_size("512") == 512
    assert parse_size("2G") == 2 * 2**30
    assert parse_size("100MiB") == 100 * 2**20
    s = Settings.from_env({"PALLET_PRIVATE": "1", "PALLET_MAX_FILE_SIZE": "1k", "PALLET_PORT": "9"})
    assert s.private is True and s.max_file_size == 1024 and s.port == 9
    assert Settings.from_env({}, port=7).port == 7
    assert Settings.from_env(s.to_env()) == s


@pytest.mark.parametrize(
    ("accept_encoding", "chosen"),
    [
        (None, ()),
        ("", ()),
        ("identity", ()),
        ("gzip", ("gzip",)),
        ("x-gzip", ("gzip",)),
        ("gzip;q=0.5", ()),  # identity (implicitly q=1) is preferred
        ("gzip, br", ("br", "gzip")),  # our preference at equal q
        ("gzip, br;q=0.5", ("gzip",)),  # br is liked less than no coding at all
        ("br;q=0", ()),
        ("gzip;q=0", ()),
        ("*", ("br", "gzip")),
        ("*;q=0.5", ("br", "gzip")),  # identity is under * too: compressed wins the tie
        ("*;q=0", ()),
        ("br;Q=0, *", ("gzip",)),
        ("gzip;q=0.5, identity", ()),
        ("gzip;q=0.5, identity;q=0.5", ("gzip",)),
        ("identity;q=0, deflate", ()),
        ("gzip;q=bogus, br", ("br",)),
        ("zstd, deflate", ()),
    ],
)
def test_content_coding_negotiation(accept_encoding, chosen):
    assert negotiate.codings(accept_encoding, ("br", "gzip")) == chosen
