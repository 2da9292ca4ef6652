"""Slow and lying clients against a real ``pallet serve``: stalled headers and bodies are cut
off with 408 problems, a huge declared length is refused before any body byte, and connections
past the cap get a 503 problem. Every socket has a deadline, so nothing here can hang."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.e2e.support import Server, ServerFactory

pytestmark = pytest.mark.e2e
DEADLINE = 20.0  # generous: the server's timeouts are 1 s; a loaded machine only delays them


@pytest.fixture(scope="module")
def strict(server_factory: ServerFactory) -> Server:
    return server_factory(
        extra_args=(
            "--header-timeout", "1", "--body-idle-timeout", "1",
        )
    )


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
    sock.settimeout(DEADLINE)
    return sock


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Everything until the server closes the connection (it must, within the deadline)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def test_stalled_headers_get_408_and_are_closed(strict: Server) -> None:
    socks = [connect(strict) for _ in range(20)]
    for sock in socks:
        sock.sendall(b"GET /simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    started = time.monotonic()
    for sock in socks:
        status, headers, body = read_answer(sock)
        assert status == 408
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(body)["type"] == "urn:pallet:problem:header-timeout"
        sock.close()
    assert time.monotonic() - started < DEADLINE
    silent = connect(strict)  # says nothing at all
    assert read_answer(silent)[0] == 408
    silent.close()


def test_stalled_body_gets_408(strict: Server) -> None:
    sock = connect(strict)
    sock.sendall(
        b"POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + strict.token.encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=xx\r\nContent-Length: 100000\r\n\r\n"
        b"--xx\r\nContent-Disposition: form-data; name=\":action\"\r\n\r\nfile_upload\r\n"
    )
    status, headers, body = read_answer(sock)
    sock.close()
    assert status == 408, body
    assert json.loads(body)["type"] == "urn:pallet:problem:body-timeout"
    assert strict.log().count("Traceback") == 0


def test_a_huge_declared_length_is_refused_before_the_body(strict: Server) -> None:
    sock = connect(strict)
    sock.sendall(
        b"POST /upload/2.0/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + strict.token.encode() + b"\r\n"
        b"Content-Type: application/vnd.pypi.upload.v2+json\r\n"
        b"Accept: application/vnd.pypi.upload.v2+json\r\n"
        b"Content-Length: 10000000000\r\n\r\n{"
    )
    # 413 and not a body-timeout 408: refused from the header, no body byte awaited.
    status, _headers, body = read_answer(sock)
    sock.close()
    assert status == 413, body
    assert json.loads(body)["type"] == "urn:pallet:problem:too-large"


def test_connections_past_the_cap_get_a_503_problem(server_factory: ServerFactory) -> None:
    # Idle connections must outlive the test, however slow the machine: a long header timeout.
    capped = server_factory(extra_args=("--max-connections", "30", "--header-timeout", "300"))
    idle = [connect(capped) for _ in range(30)]
    try:
        sock = connect(capped)
        sock.sendall(b"GET /simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, body = read_answer(sock)
        sock.close()
        assert status == 503
        assert headers["retry-after"] == "1"
        assert json.loads(body)["type"] == "urn:pallet:problem:too-many-connections"
    finally:
        for s in idle:
            s.close()
