"""A small in-process Upload 2.0 driver for the garbage collection and fsck tests, on either
backend: pre-signed URLs of the local backend go through the TestClient, S3's to the bucket."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pallet.storage import blob_key

V2 = "application/vnd.pypi.upload.v2+json"
META = {"meta": {"api-version": "2.0"}}
PRESIGNED = "vnd-pallet-presigned-put"
MULTIPART = "vnd-pallet-s3multipart-presigned"


def index_on(request: pytest.FixtureRequest, make_index, monkeypatch):  # noqa: ANN001, ANN201
    """An in-process index on ``request.param``'s backend: the local folder, or a real S3 store
    (SeaweedFS). For a fixture parametrised ``["local", "s3"]``."""
    if request.param == "local":
        return make_index()
    weed = request.getfixturevalue("seaweedfs")
    for key, value in weed.env().items():
        monkeypatch.setenv(key, value)
    return make_index(storage_url=f"s3://{weed.new_bucket()}?endpoint_url={weed.endpoint}")


def keys(index, prefix: str) -> list[str]:  # noqa: ANN001
    return sorted(k for k, _ in index.services.store.list_keys(prefix))


def content_key(path: Path) -> str:
    return blob_key(hashlib.sha256(path.read_bytes()).hexdigest())


def metadata_of(wheel) -> bytes:  # noqa: ANN001
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA")))


def leave_as_a_crash_does(index, wheel) -> list[str]:  # noqa: ANN001
    """What an upload killed between storing its blobs and committing its row leaves: the
    wheel and its METADATA at their content addresses, and no row."""
    store = index.services.store
    left = []
    for data in (wheel.read_bytes(), metadata_of(wheel)):
        key = blob_key(hashlib.sha256(data).hexdigest())
        store.put_bytes(key, data)
        left.append(key)
    return left


@dataclass
class Uploader:
    index: object
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": V2, "Accept": V2}

    def post(self, url: str, body: dict | None = None) -> httpx.Response:
        payload = json.dumps({**META, **(body or {})})
        return self.index.client.post(url, content=payload, headers=self.headers)  # type: ignore[attr-defined]

    def open(self, name: str, version: str) -> dict:
        r = self.post("/upload/2.0/", {"name": name, "version": version})
        assert r.status_code == 201, r.text
        return r.json()

    def start(self, session: dict, path: Path, mechanism: str = PRESIGNED) -> dict:
        data = path.read_bytes()
        body = {
            "filename": path.name,
            "size": len(data),
            "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
            "mechanism": mechanism,
        }
        r = self.post(session["links"]["upload"], body)
        assert r.status_code == 202, r.text
        return r.json()

    def put(self, url: str, data: bytes, headers: dict[str, str]) -> httpx.Response:
        if url.startswith("http://testserver/"):
            return self.index.client.put(url, content=data, headers=headers)  # type: ignore[attr-defined]
        return httpx.put(url, content=data, headers=headers, timeout=30)

    def send(self, fs: dict, data: bytes) -> httpx.Response:
        """The bytes, by whatever the file's mechanism is."""
        m = fs["mechanism"]
        if m["identifier"] == PRESIGNED:
            return self.put(m["url"], data, m["headers"])
        if m["identifier"] == MULTIPART:
            last = None
            for part in m["parts"]:
                start = (part["part-number"] - 1) * m["part-size"]
                last = self.put(part["url"], data[start : start + part["size"]], {})
                assert last.status_code == 200, last.text
            return last  # type: ignore[return-value]
        return self.index.client.post(  # type: ignore[attr-defined]
            m["file_url"],
            content=data,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/octet-stream",
            },
        )

    def complete(self, fs: dict) -> httpx.Response:
        return self.post(fs["links"]["complete"])

    def upload(self, session: dict, path: Path, mechanism: str = PRESIGNED) -> dict:
        fs = self.start(session, path, mechanism)
        assert self.send(fs, path.read_bytes()).status_code in (200, 204)
        done = self.complete(fs)
        assert done.status_code == 201, done.text
        return fs  # as created: with the mechanism's URLs

    def cancel(self, session: dict) -> None:
        r = self.index.client.delete(session["links"]["session"], headers=self.headers)  # type: ignore[attr-defined]
        assert r.status_code == 204, r.text

    def publish(self, session: dict) -> None:
        r = self.post(session["links"]["publish"])
        assert r.status_code == 201, r.text


def cli(index, *args: str) -> tuple[int, str]:  # noqa: ANN001
    """Run ``pallet ARGS`` in-process against the index's database and store."""
    import contextlib
    import io

    from pallet.cli import main

    settings = index.services.settings
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                *args,
                "--data-dir",
                str(settings.data_dir),
                "--database-url",
                settings.database_url,
                "--storage-url",
                settings.storage_url,
            ]
        )
    return code, out.getvalue()
