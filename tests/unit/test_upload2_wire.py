"""PEP 694 wire rules, without a server."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pallet.core import upload2
from pallet.core.problems import Problem


def body(**kw) -> bytes:  # noqa: ANN003
    return json.dumps({"meta": {"api-version": "2.0"}, **kw}).encode()


def test_rfc3339_is_whole_seconds_utc_z():
    ts = datetime(2030, 8, 1, 12, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=2)))
    assert upload2.rfc3339(ts) == "2030-08-01T10:00:00Z"
    assert upload2.rfc3339(datetime(2030, 1, 1)) == "2030-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("ctype", "ok"),
    [
        (upload2.MEDIA_TYPE, True),
        (upload2.MEDIA_TYPE + "; charset=utf-8", True),
        ("application/json", False),
        (None, False),
    ],
)
def test_content_type(ctype, ok):
    if ok:
        upload2.check_content_type(ctype)
    else:
        with pytest.raises(Problem) as exc:
            upload2.check_content_type(ctype)
        assert exc.value.status == 415


@pytest.mark.parametrize(
    ("accept", "ok"),
    [
        (None, True),
        ("*/*", True),
        (upload2.MEDIA_TYPE, True),
        ("application/*", True),
        ("text/html", False),
        (f"{upload2.MEDIA_TYPE};q=0", False),
    ],
)
def test_accept(accept, ok):
    assert upload2.accepts_v2(accept) is ok


@pytest.mark.parametrize(
    ("raw", "slug"),
    [
        (b"{", "invalid-request"),
        (b"[]", "invalid-request"),
        (json.dumps({"name": "x"}).encode(), "invalid-request"),
        (json.dumps({"meta": {"api-version": "1.0"}}).encode(), "unsupported-api-version"),
        (json.dumps({"meta": {"api-version": "2"}}).encode(), "invalid-request"),
        (b"x" * (upload2.MAX_BODY + 1), "body-too-large"),
        (b"[" * 10240, "json-limit-exceeded"),
        (
            b'{"meta": {"api-version": "2.0"}, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            "json-limit-exceeded",
        ),
        (
            b'{"meta": {"api-version": "2.0"}, "extend-for": 1' + b"0" * 5000 + b"}",
            "json-limit-exceeded",
        ),
        (b'{"meta": {"api-version": "2.0"}, "extend-for": 1e999}', "json-limit-exceeded"),
        (b'{"meta": {"api-version": "2.0"}, "extend-for": NaN}', "invalid-request"),
        (b'{"meta": {"api-version": "2.0"}, "x": "' + b"x" * 60_000 + b'"}', "json-limit-exceeded"),
        (
            b'{"meta": {"api-version": "2.0"}, "x": "\xff"}'.replace(b"\\xff", b"\xff"),
            "invalid-request",
        ),
    ],
)
def test_bad_bodies(raw, slug):
    with pytest.raises(Problem) as exc:
        upload2.parse_body(raw)
    assert exc.value.slug == slug


def test_future_minor_version_is_accepted():
    assert upload2.parse_body(body(name="x"))["name"] == "x"
    assert upload2.parse_body(json.dumps({"meta": {"api-version": "2.7"}}).encode())


def test_create_session_normalizes():
    name, normalized, version = upload2.parse_create_session(
        {"name": "Acme_Widgets", "version": "2.1.0"}
    )
    assert (name, normalized, str(version)) == ("Acme_Widgets", "acme-widgets", "2.1.0")
    with pytest.raises(Problem) as exc:
        upload2.parse_create_session({"name": "-x-", "version": "one"})
    assert {e.source for e in exc.value.errors} == {"name", "version"}


def test_create_session_version_beyond_int_conversion_limit_is_invalid():
    """A 5000-digit segment makes packaging's int() raise a plain ValueError (not
    InvalidVersion): still a 400 naming the version, with the message cut short."""
    with pytest.raises(Problem) as exc:
        upload2.parse_create_session({"name": "x", "version": "1." + "9" * 5000})
    assert exc.value.status == 400
    assert [e.source for e in exc.value.errors] == ["version"]
    assert len(exc.value.errors[0].message) < 200


def test_hashes():
    sha = hashlib.sha256(b"x").hexdigest()
    assert upload2.parse_hashes({"sha256": sha}) == {"sha256": sha}
    blake = hashlib.blake2b(b"x").hexdigest()
    assert upload2.parse_hashes({"blake2b": blake, "md5": hashlib.md5(b"x").hexdigest()})  # noqa: S324
    for bad in (
        {},
        None,
        {"md5": hashlib.md5(b"x").hexdigest()},  # noqa: S324
        {"sha256": sha.upper()},
        {"sha256": sha[:-1]},
        {"shake_128": "00"},
        {"whirlpool-ish": "00"},
    ):
        with pytest.raises(Problem):
            upload2.parse_hashes(bad)


def test_create_file_limits():
    sha = hashlib.sha256(b"x").hexdigest()
    req = {
        "filename": "a-1.0.tar.gz",
        "size": 10,
        "hashes": {"sha256": sha},
        "mechanism": "http-post-bytes",
    }
    assert upload2.parse_create_file(req, 100)[1] == 10
    with pytest.raises(Problem) as exc:
        upload2.parse_create_file(req, 5)
    assert exc.value.status == 409
    for size in (0, -1, True, "10", 1.5):
        with pytest.raises(Problem):
            upload2.parse_create_file({**req, "size": size}, 100)


def test_extend_for():
    assert upload2.parse_extend({"extend-for": 60}) == 60
    for bad in (-1, "60", None, True):
        with pytest.raises(Problem):
            upload2.parse_extend({"extend-for": bad})
    assert datetime.now(UTC)


def test_extension_is_capped_for_any_extend_for():
    """PEP 694: extend-for is a hint; any size is granted up to the cap, never an overflow, and
    expiry never moves earlier."""
    from pallet.upload.v2.sessions import extended

    expires = datetime(2030, 1, 1, tzinfo=UTC)
    cap = expires + timedelta(days=6)
    for seconds in (10**12, 10**20, 10**63):
        assert extended(expires, seconds, cap) == cap
    assert extended(expires, 60, cap) == expires + timedelta(seconds=60)
    assert extended(expires, 0, cap) == expires
    assert extended(expires, 10**20, expires - timedelta(days=1)) == expires  # past the cap
    assert extended(expires.replace(tzinfo=None), 10**20, cap) == cap  # naive = UTC (SQLite)
