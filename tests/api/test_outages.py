"""A database or object store that goes away: 503 with Retry-After while it is gone, never a 500,
and service back by itself when it returns, with nothing lost.

The index talks to the real PostgreSQL and SeaweedFS through a forwarder the test can cut: open
connections are dropped and new ones closed on arrival, as during a restart.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.api.uploads import upload
from tests.dists import make_wheel


class Forwarder:
    """127.0.0.1:<port> -> target, until cut."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up = False
        with self.lock:
            for s in self.open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self.open.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def forwarder() -> Iterator:
    made: list[Forwarder] = []

    def make(host: str, port: int) -> Forwarder:
        made.append(Forwarder(host, port))
        return made[-1]

    yield make
    for f in made:
        f.close()


def _through(url: str, forwarder) -> tuple[str, Forwarder]:  # noqa: ANN001
    parts = urlsplit(url)
    f = forwarder(parts.hostname, parts.port)
    return url.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{f.port}", 1), f


def _assert_unavailable(response) -> None:  # noqa: ANN001
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["retry-after"].isdigit()
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_outage(database_url: str, make_index, forwarder, tmp_path) -> None:  # noqa: ANN001
    url, link = _through(database_url, forwarder)
    index = make_index(database_url=url)
    token = index.token()
    before = make_wheel(tmp_path / "a", "steady", "1.0")
    assert upload(index.client, before, token, name="steady", version="1.0").status_code == 200
    assert index.client.get("/simple/steady/").status_code == 200

    link.cut()
    _assert_unavailable(index.client.get("/simple/steady/"))
    _assert_unavailable(index.client.get("/simple/"))
    during = make_wheel(tmp_path / "b", "steady", "2.0")
    _assert_unavailable(upload(index.client, during, token, name="steady", version="2.0"))
    session = {"name": "steady", "version": "3"}
    _assert_unavailable(
        index.client.post("/upload/2.0/", json=session, auth=("__token__", token))
    )
    assert index.client.get("/_/ready").status_code == 503
    assert index.client.get("/_/health").status_code == 200  # alive: restarting it won't help

    link.restore()  # back by itself: no restart of the index
    assert index.client.get("/_/ready").status_code == 200
    assert upload(index.client, during, token, name="steady", version="2.0").status_code == 200
    page = index.client.get(
        "/simple/steady/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    assert sorted(f["filename"] for f in page.json()["files"]) == sorted([before.name, during.name])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_object_storage_outage(  # noqa: PLR0913
    database_url: str, make_index, forwarder, seaweedfs, tmp_path, monkeypatch  # noqa: ANN001
) -> None:
    for key, value in seaweedfs.env().items():
        monkeypatch.setenv(key, value)
    endpoint, link = _through(seaweedfs.endpoint, forwarder)
    index = make_index(storage_url=f"s3://{seaweedfs.new_bucket()}?endpoint_url={endpoint}")
    token = index.token()
    before = make_wheel(tmp_path / "a", "stored", "1.0")
    assert upload(index.client, before, token, name="stored", version="1.0").status_code == 200
    files = index.client.get(
        "/simple/stored/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    ).json()["files"]
    file_url = "/files/" + files[0]["url"].split("/files/", 1)[1]

    link.cut()
    _assert_unavailable(index.client.get(file_url))
    during = make_wheel(tmp_path / "b", "stored", "2.0")
    _assert_unavailable(upload(index.client, during, token, name="stored", version="2.0"))
    assert index.client.get("/simple/stored/").status_code == 200  # pages need no store

    link.restore()
    assert index.client.get(file_url).content == before.read_bytes()
    assert upload(index.client, during, token, name="stored", version="2.0").status_code == 200
    names = [
        f["filename"]
        for f in index.client.get(
            "/simple/stored/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        ).json()["files"]
    ]
    assert sorted(names) == sorted([before.name, during.name])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_store_failing_when_a_download_opens_is_a_503(  # noqa: PLR0913
    database_url: str, make_index, seaweedfs, tmp_path, monkeypatch  # noqa: ANN001
) -> None:
    """Seen just after a SeaweedFS restart: HEAD answers, then GetObject fails (500). The
    client must get a 503 to retry, not a 200 whose body ends before its first byte."""
    from botocore.exceptions import ClientError

    for key, value in seaweedfs.env().items():
        monkeypatch.setenv(key, value)
    index = make_index(storage_url=f"s3://{seaweedfs.new_bucket()}?endpoint_url={seaweedfs.endpoint}")
    wheel = make_wheel(tmp_path, "flaky", "1.0")
    assert upload(index.client, wheel, index.token(), name="flaky", version="1.0").status_code == 200
    files = index.client.get(
        "/simple/flaky/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    ).json()["files"]
    file_url = "/files/" + files[0]["url"].split("/files/", 1)[1]

    def failing(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ClientError(
            {"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 500}},
            "GetObject",
        )
        yield b""  # a generator, as iter_bytes is

    store = index.services.store
    real = store.iter_bytes
    monkeypatch.setattr(store, "iter_bytes", failing)
    _assert_unavailable(index.client.get(file_url))
    monkeypatch.setattr(store, "iter_bytes", real)
    assert index.client.get(file_url).content == wheel.read_bytes()
