"""The upstream client against a real loopback server that misbehaves: pages too large or too
slow, redirects elsewhere or in circles. Time is a fake clock, moved by the test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count

import pytest

from pallet.config import Settings
from pallet.proxy.upstreams import Client, Upstream, UpstreamError


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        name = self.path.strip("/").split("/")[-1]
        if name == "huge":
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
        server.shutdown()
        server.server_close()


def client(**settings: object) -> Client:
    ticks = count()  # every look at the clock is one second later
    return Client(Settings(**settings), clock=lambda: float(next(ticks)))  # type: ignore[arg-type]


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
