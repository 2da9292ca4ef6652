"""Upload 2.0 conformance: plain HTTP against a live server.

By default a real ``pallet serve`` is started (on SQLite, and on PostgreSQL when the suite has
one); ``--upload-url URL --index-url URL --token T`` points the suite at any other server.
Tests that need Pallet-only powers (a second token, short expiry, deferred processing) are
skipped against foreign servers.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dists import make_sdist, make_wheel
from tests.e2e.conftest import database  # noqa: F401 - the SQLite/PostgreSQL parametrisation
from tests.e2e.support import PostgresDatabases, Server, ServerFactory

V2 = "application/vnd.pypi.upload.v2+json"
META = {"api-version": "2.0"}


@dataclass
class Target:
    upload_url: str
    index_url: str
    token: str
    server: Server | None = None
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Accept": V2}
        token = self.token if token is None else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        c = httpx.Client(headers=headers, timeout=60, follow_redirects=False)
        self.clients.append(c)
        return c

    def new_token(self, *args: str) -> str:
        if self.server is None:
            pytest.skip("needs a Pallet server (second tokens)")
        return self.server.create_token(*args)


def post_json(client: httpx.Client, url: str, body: dict[str, Any] | None = None) -> httpx.Response:
    payload = {"meta": META, **(body or {})}
    import json

    return client.post(url, content=json.dumps(payload), headers={"Content-Type": V2})


def unique_name(prefix: str = "conf") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass
class Release:
    """A session plus the dists built for it, with helpers to drive the protocol."""

    target: Target
    client: httpx.Client
    name: str
    version: str
    tmp: Path
    session: dict[str, Any] = field(default_factory=dict)

    def open(self) -> httpx.Response:
        r = post_json(
            self.client, self.target.upload_url, {"name": self.name, "version": self.version}
        )
        if r.status_code == 201:
            self.session = r.json()
        return r

    def wheel(self, **kw: Any) -> Path:
        d = self.tmp / secrets.token_hex(3)
        d.mkdir()
        return make_wheel(d, self.name, self.version, **kw)

    def sdist(self, **kw: Any) -> Path:
        d = self.tmp / secrets.token_hex(3)
        d.mkdir()
        return make_sdist(d, self.name, self.version, **kw)

    def start_file(
        self,
        path: Path,
        *,
        mechanism: str = "http-post-bytes",
        hashes: dict[str, str] | None = None,
        size: int | None = None,
        filename: str | None = None,
    ) -> httpx.Response:
        data = path.read_bytes()
        return post_json(
            self.client,
            self.session["links"]["upload"],
            {
                "filename": filename or path.name,
                "size": len(data) if size is None else size,
                "hashes": hashes or {"sha256": hashlib.sha256(data).hexdigest()},
                "mechanism": mechanism,
            },
        )

    def send_bytes(self, file_session: dict[str, Any], data: bytes) -> httpx.Response:
        return self.client.post(
            file_session["mechanism"]["file_url"],
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    def complete(self, file_session: dict[str, Any]) -> httpx.Response:
        return post_json(self.client, file_session["links"]["complete"])

    def upload(self, path: Path) -> dict[str, Any]:
        """The whole happy path for one file; returns the final file-session body."""
        r = self.start_file(path)
        assert r.status_code == 202, r.text
        fs = r.json()
        assert self.send_bytes(fs, path.read_bytes()).status_code in (200, 201, 204)
        done = self.complete(fs)
        assert done.status_code in (201, 202), done.text
        return self.wait_file(done.json()["links"]["file-upload-session"])

    def wait_file(self, url: str, timeout: float = 60) -> dict[str, Any]:
        import time

        deadline = time.monotonic() + timeout
        while True:
            body = self.client.get(url).json()
            if body["status"] != "processing" or time.monotonic() > deadline:
                return body
            time.sleep(0.1)

    def status(self) -> dict[str, Any]:
        r = self.client.get(self.session["links"]["session"])
        assert r.status_code == 200, r.text
        return r.json()

    def publish(self) -> httpx.Response:
        return post_json(self.client, self.session["links"]["publish"])

    def wait_session(self, timeout: float = 60) -> dict[str, Any]:
        import time

        deadline = time.monotonic() + timeout
        while True:
            body = self.status()
            if body["status"] != "processing" or time.monotonic() > deadline:
                return body
            time.sleep(0.1)


def _own_server(request: pytest.FixtureRequest) -> bool:
    return not request.config.getoption("--upload-url")


@pytest.fixture(scope="module")
def target(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    database: PostgresDatabases | None,  # noqa: F811
) -> Iterator[Target]:
    """The server under test (started here unless --upload-url was given)."""
    opts = request.config
    if not _own_server(request):
        if database is not None:
            pytest.skip("a foreign server is tested once, not per database")
        t = Target(
            opts.getoption("--upload-url"), opts.getoption("--index-url"), opts.getoption("--token")
        )
        yield t
    else:
        extra = getattr(request.module, "SERVER_ARGS", ())
        factory = ServerFactory(tmp_path_factory.mktemp("conformance"), database)
        server = factory(extra_args=tuple(extra))
        t = Target(f"{server.url}/upload/2.0/", server.simple_url, server.token, server)
        try:
            yield t
        finally:
            factory.stop_all()
    for c in t.clients:
        c.close()


@pytest.fixture
def release(target: Target, tmp_path: Path) -> Release:
    return Release(target, target.client(), unique_name(), "1.0", tmp_path)


def pallet_only(target: Target) -> None:
    if target.server is None:
        pytest.skip("Pallet-specific behaviour")


def legacy_upload(target: Target, name: str, version: str, wheel: Path) -> httpx.Response:
    """The same wheel through the legacy API, as a concurrent twine would send it."""
    assert target.server is not None
    return httpx.post(
        target.server.upload_url,
        auth=("__token__", target.token),
        data={
            ":action": "file_upload",
            "protocol_version": "1",
            "name": name,
            "version": version,
            "filetype": "bdist_wheel",
            "pyversion": "py3",
        },
        files={"content": (wheel.name, wheel.read_bytes())},
        timeout=60,
    )
