"""The upstream client against a real loopback server that misbehaves: pages too large or too
slow, redirects elsewhere or in circles, bodies cut short or stalled. Time is a fake clock,
moved by the test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count

import h11
import pytest

from pallet.config import Settings
from pallet.proxy.upstreams import DIRECT_BODY, READ_SIZE, Client, Upstream, UpstreamError

BIG = bytes(range(256)) * (8 * 2**20 // 256)  # 8 MiB that show any byte out of place
RELEASE = threading.Event()  # what a stalled body waits for: the end of the module's tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections = 0

    def log_message(self, *args: object) -> None:
        pass

    def setup(self) -> None:
        type(self).connections += 1
        super().setup()

    def do_GET(self) -> None:  # noqa: N802
        name = self.path.strip("/").split("/")[-1]
        if name in ("big", "small"):
            self._send(200, BIG if name == "big" else BIG[:100_000])
        elif name in ("short", "stall"):  # 8 MiB promised, 3 MiB sent
            self.send_response(200)
            self.send_header("Content-Length", str(len(BIG)))
            self.end_headers()
            self.wfile.write(BIG[: 3 * 2**20])
            self.wfile.flush()
            if name == "stall":
                RELEASE.wait(timeout=30)
            self.close_connection = True
        elif name == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(BIG), 2**20):
                self.wfile.write(b"%x\r\n%s\r\n" % (2**20, BIG[i : i + 2**20]))
            self.wfile.write(b"0\r\n\r\n")
        elif name == "huge":
            self._send(200, b"x" * 5000)
        elif name == "drip":  # many small chunks: each read is quick, the whole is not
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"1\r\nx\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif name == "away":
            self._redirect("http://elsewhere.invalid/simple/x/")
        elif name == "around":
            self._redirect(self.path)
        elif name == "moved":
            self._redirect("/simple/here/")
        else:
            self._send(200, b'{"meta": {"api-version": "1.1"}, "files": []}')

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Upstream("up", f"http://127.0.0.1:{server.server_address[1]}/simple/")
    finally:
        RELEASE.set()
        server.shutdown()
        server.server_close()


def client(**settings: object) -> Client:
    ticks = count()  # every look at the clock is one second later
    return Client(Settings(**settings), clock=lambda: float(next(ticks)))  # type: ignore[arg-type]


def still_client(**settings: object) -> Client:
    """A client whose clock stands still: a body is never too slow, however it is cut up."""
    return Client(Settings(**settings), clock=lambda: 0.0)  # type: ignore[arg-type]


def test_a_page_over_the_limit_is_refused(upstream: Upstream) -> None:
    with pytest.raises(UpstreamError, match="over 1000 bytes"):
        client(upstream_max_page=1000, upstream_timeout=1000).page(upstream, "huge", None)


def test_a_page_that_drips_is_cut_at_its_deadline(upstream: Upstream) -> None:
    with pytest.raises(UpstreamError, match="slower than 4 s"):  # 50 chunks, 5 looks allowed
        client(upstream_timeout=2).page(upstream, "drip", None)
    assert client(upstream_timeout=1000).page(upstream, "drip", None).body == b"x" * 50


def test_redirects_stay_on_the_upstreams_origin(upstream: Upstream) -> None:
    c = client()
    with pytest.raises(UpstreamError, match="another host"):
        c.page(upstream, "away", None)
    with pytest.raises(UpstreamError, match="redirects"):
        c.page(upstream, "around", None)
    moved = c.page(upstream, "moved", None)
    assert moved.status == 200 and moved.url.endswith("/simple/here/")


def test_answers_are_read_in_large_pieces() -> None:
    """An httpcore upgrade that drops the constant the proxy raises must fail here, not slow
    every first download down without a word."""
    import httpcore

    from pallet.proxy.upstreams import READ_SIZE

    client = Client(Settings())
    try:
        assert httpcore.HTTP11Connection.READ_NUM_BYTES >= READ_SIZE
    finally:
        client.close()


@pytest.fixture
def through_h11(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of what the client's h11 is handed: what did not skip it."""
    seen: list[int] = []
    receive = h11.Connection.receive_data

    def counted(self: h11.Connection, data: bytes) -> None:
        seen.append(len(data))
        receive(self, data)

    monkeypatch.setattr(h11.Connection, "receive_data", counted)
    return seen


def fetch(c: Client, upstream: Upstream, name: str) -> bytes:
    with c.stream("up", upstream.url + name, {}) as r:
        return b"".join(c.body(r))


def test_a_large_body_is_read_from_the_connection_past_h11(
    upstream: Upstream, through_h11: list[int]
) -> None:
    c = still_client()
    assert fetch(c, upstream, "big") == BIG
    # The headers and the first piece (at most two reads) go through h11; the rest does not.
    assert sum(through_h11) <= 2 * READ_SIZE + 4096 < len(BIG)
    # A connection whose body h11 did not see to its end is never used again.
    before = _Handler.connections
    assert fetch(c, upstream, "small") == BIG[:100_000]
    assert _Handler.connections == before + 1


def test_other_bodies_go_through_httpx_and_short_ones_keep_their_connection(
    upstream: Upstream, through_h11: list[int]
) -> None:
    c = still_client()
    assert fetch(c, upstream, "chunked") == BIG
    assert sum(through_h11) > len(BIG)
    assert len(BIG[:100_000]) < DIRECT_BODY
    assert fetch(c, upstream, "small") == BIG[:100_000]
    before = _Handler.connections
    assert fetch(c, upstream, "small") == BIG[:100_000]
    assert _Handler.connections == before


def test_a_body_cut_short_or_stalled_is_an_upstream_error(upstream: Upstream) -> None:
    received = bytearray()
    c = still_client()
    with pytest.raises(UpstreamError, match="up: RemoteProtocolError"):
        with c.stream("up", upstream.url + "short", {}) as r:
            for chunk in c.body(r):
                received += chunk
    assert received == BIG[: 3 * 2**20]  # every byte sent, in order, then the error
    with pytest.raises(UpstreamError, match="up: ReadTimeout"):
        fetch(still_client(upstream_timeout=0.5), upstream, "stall")


def test_a_body_that_drips_is_cut(upstream: Upstream) -> None:
    """50 one-byte chunks, the clock a second later at each look: far below the least rate
    once twice the timeout has passed, and whole when the timeout is long."""
    with pytest.raises(UpstreamError, match="slower than 16 KiB/s"):
        fetch(client(upstream_timeout=2), upstream, "drip")
    assert fetch(client(upstream_timeout=1000), upstream, "drip") == b"x" * 50
