"""Send legacy uploads the way twine does (same form fields, same multipart layout)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.testclient import TestClient


def form_for(path: Path, name: str, version: str, **overrides: str | None) -> dict[str, str]:
    data = path.read_bytes()
    is_wheel = path.name.endswith(".whl")
    fields: dict[str, str | None] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.4",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel" if is_wheel else "sdist",
        "pyversion": "py3" if is_wheel else "source",
        "md5_digest": hashlib.md5(data).hexdigest(),  # noqa: S324 - what twine sends
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest(),
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def upload(
    client: TestClient,
    path: Path,
    token: str | None,
    *,
    name: str,
    version: str,
    filename: str | None = None,
    url: str = "/legacy/",
    **overrides: str | None,
):  # noqa: ANN201
    auth = ("__token__", token) if token else None
    return client.post(
        url,
        data=form_for(path, name, version, **overrides),
        files={"content": (filename or path.name, path.read_bytes(), "application/octet-stream")},
        auth=auth,
    )
