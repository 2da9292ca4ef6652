"""Hostile JSON and numbers on every endpoint that reads them.

Deeply nested arrays and objects, overlong numbers and strings, non-JSON constants, versions
with a segment longer than Python's integer-conversion limit, ``extend-for`` values no clock can
hold: each gets a 4xx RFC 9457 problem (or, for ``extend-for``, the PEP 694 success with the
capped ``expires-at``), never a 500. Requests go over one raw keep-alive connection, and the
request after each hostile one must be answered on the same socket: a 500 makes the server
drop the connection, which a pooled client sees as a reset.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conformance.conftest import META, V2, Release, Target, pallet_only

PROBLEM = "application/problem+json"
LIMIT_SLUG = "urn:pallet:problem:json-limit-exceeded"
DEEP = 10 * 1024  # 10 KiB of brackets: far past any recursion limit
HUGE_VERSION = "1." + "9" * 5000  # past Python's 4300-digit int conversion limit


@pytest.fixture(autouse=True)
def _pallet(target: Target) -> None:
    pallet_only(target)


# --- a raw HTTP/1.1 keep-alive connection -------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One TCP connection to the server under test; every request reuses it."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        assert parts.hostname == "127.0.0.1", url
        self.host = parts.netloc
        self.sock = socket.create_connection(("127.0.0.1", parts.port or 80), timeout=120)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def request(
        self, method: str, url: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Answer:
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        head = {"Host": self.host, "Content-Length": str(len(body)), **(headers or {})}
        lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        status = int(self._line().split()[1])
        received: dict[str, str] = {}
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            received[name.strip().lower()] = value.strip()
        if received.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while size := int(self._line().split(b";")[0], 16):
                data += self._take(size)
                self._line()
            self._line()
        else:
            data = self._take(int(received.get("content-length", "0")))
        return Answer(status, received, data)


@pytest.fixture
def conn(target: Target) -> Iterator[Connection]:
    c = Connection(target.upload_url)
    try:
        yield c
    finally:
        c.close()


def v2_headers(target: Target) -> dict[str, str]:
    return {"Authorization": f"Bearer {target.token}", "Content-Type": V2, "Accept": V2}


def basic(target: Target) -> str:
    return "Basic " + base64.b64encode(f"__token__:{target.token}".encode()).decode()


def assert_problem(answer: Answer, status: int = 400, type_: str | None = None) -> dict:
    assert answer.status == status, answer.body[:2000]
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert answer.headers.get("connection", "").lower() != "close"
    body = answer.json()
    assert body["status"] == status and body["title"]
    if type_ is not None:
        assert body["type"] == type_, body
    return body


def still_usable(conn: Connection, target: Target, session_url: str | None = None) -> None:
    """The next request on the same socket is answered (and changed nothing)."""
    if session_url is None:
        r = conn.request("GET", target.upload_url.split("/upload/")[0] + "/_/health")
        assert r.status == 200, r.body
        return
    r = conn.request("GET", session_url, {"Authorization": f"Bearer {target.token}"})
    assert r.status == 200, r.body
    assert r.json()["status"] == "open"


# --- the bodies ---------------------------------------------------------------------------


def _meta_with(raw_value: str) -> bytes:
    return ('{"meta": {"api-version": "2.0"}, "x": ' + raw_value + "}").encode()


#: name -> (body, expected problem type or None for "any 400")
HOSTILE: dict[str, tuple[bytes, str | None]] = {
    "open-arrays": (b"[" * DEEP, LIMIT_SLUG),
    "closed-arrays": (b"[" * DEEP + b"]" * DEEP, LIMIT_SLUG),
    "nested-in-body": (_meta_with("[" * DEEP + "]" * DEEP), LIMIT_SLUG),
    "nested-objects": (b'{"a":' * DEEP + b"1" + b"}" * DEEP, LIMIT_SLUG),
    "nested-in-string-then-real": (
        _meta_with('"' + "[" * DEEP + '", ' + "[" * 40 + "]" * 40),
        LIMIT_SLUG,
    ),
    "long-integer": (_meta_with("1" + "0" * 5000), LIMIT_SLUG),
    "long-float": (_meta_with("1." + "5" * 5000), LIMIT_SLUG),
    "float-overflow": (_meta_with("1e999"), LIMIT_SLUG),
    "long-string": (_meta_with('"' + "x" * 60_000 + '"'), LIMIT_SLUG),
    "long-key": (
        ('{"meta": {"api-version": "2.0"}, "' + "k" * 60_000 + '": 1}').encode(),
        LIMIT_SLUG,
    ),
    "nan": (_meta_with("NaN"), "urn:pallet:problem:invalid-request"),
    "infinity": (_meta_with("-Infinity"), "urn:pallet:problem:invalid-request"),
}

ENDPOINTS = ["create-session", "extend", "publish", "create-file", "complete", "file-extend"]


def endpoint_url(name: str, release: Release, target: Target) -> str:
    if name == "create-session":
        return target.upload_url
    release.open()
    links = release.session["links"]
    if name in ("extend", "publish"):
        return links[name]
    if name == "create-file":
        return links["upload"]
    fs = release.start_file(release.wheel()).json()
    return fs["links"]["extend" if name == "file-extend" else name]


@pytest.mark.parametrize("body", list(HOSTILE))
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_hostile_json_is_a_problem_and_the_connection_survives(
    endpoint: str, body: str, release: Release, target: Target, conn: Connection
):
    url = endpoint_url(endpoint, release, target)
    raw, type_ = HOSTILE[body]
    problem = assert_problem(conn.request("POST", url, v2_headers(target), raw), 400, type_)
    assert problem["meta"] == META
    still_usable(conn, target, release.session["links"]["session"] if release.session else None)


def test_a_normal_body_passes_the_bounds(release: Release, target: Target, conn: Connection):
    """Bounds that refuse the hostile bodies leave real ones alone: an unknown key holding a
    modest nested value, brackets inside strings, unicode and escapes are all fine."""
    extra = {"a": [[[{"b": ['\\"[{', "é\u2603", 1.5e3, -0, True, None]}]]]}
    raw = json.dumps(
        {"meta": META, "name": release.name, "version": "1.0.post1", "x": extra}
    ).encode()
    r = conn.request("POST", target.upload_url, v2_headers(target), raw)
    assert r.status == 201, r.body


# --- versions and numbers -----------------------------------------------------------------


def test_create_session_with_a_5000_digit_version_segment(
    release: Release, target: Target, conn: Connection
):
    raw = json.dumps({"meta": META, "name": release.name, "version": HUGE_VERSION}).encode()
    problem = assert_problem(conn.request("POST", target.upload_url, v2_headers(target), raw))
    assert [e["source"] for e in problem["errors"]] == ["version"]
    still_usable(conn, target)


@pytest.mark.parametrize(
    "filename", [f"pkg-{HUGE_VERSION}-py3-none-any.whl", f"pkg-{HUGE_VERSION}.tar.gz"]
)
def test_create_file_with_a_5000_digit_version_segment(
    filename: str, release: Release, target: Target, conn: Connection
):
    release.open()
    raw = json.dumps(
        {
            "meta": META,
            "filename": filename,
            "size": 100,
            "hashes": {"sha256": "0" * 64},
            "mechanism": "http-post-bytes",
        }
    ).encode()
    url = release.session["links"]["upload"]
    assert_problem(conn.request("POST", url, v2_headers(target), raw))
    still_usable(conn, target, release.session["links"]["session"])


def _expires(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@pytest.mark.parametrize("seconds", [10**12, 10**20, 10**60])
def test_extend_for_beyond_any_clock_is_capped_not_an_error(
    seconds: int, release: Release, target: Target, conn: Connection
):
    """PEP 694: extend never fails for asking too much; it answers the current expires-at."""
    release.open()
    links = release.session["links"]
    before = _expires(release.session["expires-at"])
    raw = json.dumps({"meta": META, "extend-for": seconds}).encode()
    r = conn.request("POST", links["extend"], v2_headers(target), raw)
    assert r.status == 200, r.body
    after = _expires(r.json()["expires-at"])
    assert before <= after <= datetime.now(UTC) + timedelta(days=7, minutes=5)  # the default cap
    again = conn.request("POST", links["extend"], v2_headers(target), raw)
    assert again.status == 200 and _expires(again.json()["expires-at"]) == after

    fs = release.start_file(release.wheel()).json()
    r = conn.request("POST", fs["links"]["extend"], v2_headers(target), raw)
    assert r.status == 200, r.body
    assert (
        _expires(r.json()["expires-at"]) == after
    )  # a file session lives no longer than its session
    still_usable(conn, target, links["session"])


# --- other JSON bodies: attestations and the multipart part list ---------------------------


def test_attestations_nested_too_deep(release: Release, target: Target, conn: Connection):
    release.open()
    wheel = release.wheel()
    fs = release.start_file(wheel).json()
    assert release.send_bytes(fs, wheel.read_bytes()).status_code in (200, 201, 204)
    url = fs["mechanism"]["attestations_url"]
    auth = {"Authorization": f"Bearer {target.token}", "Content-Type": "application/json"}
    for raw in (b"[" * DEEP, b"[" + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"]"):
        assert_problem(conn.request("POST", url, auth, raw), 400, LIMIT_SLUG)
        still_usable(conn, target, release.session["links"]["session"])
    statement = base64.b64encode(b"[" * DEEP).decode()
    nested_statement = json.dumps(
        [{"version": 1, "verification_material": {}, "envelope": {"statement": statement}}]
    ).encode()
    assert_problem(conn.request("POST", url, auth, nested_statement), 400)
    still_usable(conn, target, release.session["links"]["session"])


MULTIPART = "vnd-pallet-s3multipart-presigned"


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * DEEP,
        b'[{"part-number": 1e999, "etag": "x"}]',
        b'[{"part-number": ' + b"9" * 5000 + b', "etag": "x"}]',
        b'[{"part-number": 1, "etag": "' + b"e" * 100_000 + b'"}]',
    ],
    ids=["deep", "float-overflow", "long-integer", "long-etag"],
)
def test_multipart_part_list(raw: bytes, release: Release, target: Target, conn: Connection):
    release.open()
    if MULTIPART not in release.session["mechanisms"]:
        pytest.skip(f"server does not offer {MULTIPART}")
    fs = release.start_file(release.wheel(), mechanism=MULTIPART).json()
    url = fs["mechanism"]["parts_url"]
    auth = {"Authorization": f"Bearer {target.token}", "Content-Type": "application/json"}
    answer = conn.request("POST", url, auth, raw)
    assert 400 <= answer.status < 500, answer.body[:500]
    assert answer.headers["content-type"].startswith(PROBLEM)
    still_usable(conn, target, release.session["links"]["session"])


# --- the legacy form and uv's /direct/ fields ----------------------------------------------


def _form(release: Release, wheel_bytes: bytes, version: str) -> dict[str, str]:
    return {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": release.name,
        "version": version,
        "filetype": "bdist_wheel",
        "pyversion": "py3",
        "sha256_digest": hashlib.sha256(wheel_bytes).hexdigest(),
    }


def _multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[dict, bytes]:
    request = httpx.Request(
        "POST",
        "http://127.0.0.1/",
        data=fields,
        files={"content": (filename, content, "application/octet-stream")},
    )
    body = request.read()
    return {"Content-Type": request.headers["content-type"]}, body


def test_legacy_form_with_a_5000_digit_version(release: Release, target: Target, conn: Connection):
    assert target.server is not None
    wheel = release.wheel()
    data = wheel.read_bytes()
    headers, body = _multipart(_form(release, data, HUGE_VERSION), wheel.name, data)
    answer = conn.request(
        "POST", target.server.upload_url, {**headers, "Authorization": basic(target)}, body
    )
    problem = assert_problem(answer, 400)
    assert "version" in [e["source"] for e in problem.get("errors", [])]
    still_usable(conn, target)


def test_legacy_form_with_nested_attestations(release: Release, target: Target, conn: Connection):
    assert target.server is not None
    wheel = release.wheel()
    data = wheel.read_bytes()
    fields = {**_form(release, data, "1.0"), "attestations": "[" * DEEP}
    headers, body = _multipart(fields, wheel.name, data)
    answer = conn.request(
        "POST", target.server.upload_url, {**headers, "Authorization": basic(target)}, body
    )
    assert_problem(answer, 400, LIMIT_SLUG)
    still_usable(conn, target)


def _direct(conn: Connection, target: Target, action: str, fields: dict[str, str]) -> Answer:
    assert target.server is not None
    return conn.request(
        "POST",
        f"{target.server.url}/direct/{action}",
        {"Authorization": basic(target), "Content-Type": "application/x-www-form-urlencoded"},
        urllib.parse.urlencode(fields).encode(),
    )


def test_direct_reserve_and_finalize_with_a_5000_digit_version(
    release: Release, target: Target, conn: Connection
):
    wheel = release.wheel()
    data = wheel.read_bytes()
    good = {**_form(release, data, "1.0"), "filename": wheel.name}
    bad = {**good, "version": HUGE_VERSION}
    assert_problem(_direct(conn, target, "reserve", bad), 400)
    still_usable(conn, target)
    # bytes in place, then a finalize whose form lies about the version
    reserved = _direct(conn, target, "reserve", good)
    assert reserved.status == 201, reserved.body
    grant = reserved.json()
    put = httpx.put(grant["upload_url"], content=data, headers=grant["upload_headers"], timeout=60)
    assert put.status_code == 200, put.text
    assert_problem(_direct(conn, target, "finalize", bad), 400)
    still_usable(conn, target)
    assert _direct(conn, target, "finalize", good).status == 200
