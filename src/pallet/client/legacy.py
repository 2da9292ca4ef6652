"""The legacy form upload (``POST /legacy/``), for indexes without Upload 2.0 (pypiserver,
devpi, PyPI's ``/legacy/``): the fields uv sends, built from the file's own metadata, with the
file part streamed from disk."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping

from pallet.client.dists import Dist
from pallet.client.transfers import FileRange, Meter
from pallet.client.transport import ClientError, Transport

_SINGLE = {
    "summary": "summary",
    "description": "description",
    "description_content_type": "description_content_type",
    "author": "author",
    "author_email": "author_email",
    "maintainer": "maintainer",
    "maintainer_email": "maintainer_email",
    "license": "license",
    "license_expression": "license_expression",
    "home_page": "home_page",
    "download_url": "download_url",
}
_MULTI = {
    "classifiers": "classifiers",
    "dynamic": "dynamic",
    "license_files": "license_file",
    "obsoletes_dist": "obsoletes_dist",
    "platforms": "platform",
    "provides_dist": "provides_dist",
    "provides_extra": "provides_extra",
    "import_names": "import_names",
    "import_namespaces": "import_namespaces",
    "requires_dist": "requires_dist",
    "requires_external": "requires_external",
}


def form_fields(dist: Dist) -> list[tuple[str, str]]:
    meta = dist.metadata
    fields = [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", str(meta.get("metadata_version", "2.1"))),
        ("name", dist.name),
        ("version", dist.version),
        ("filetype", dist.dist.packagetype),
        ("pyversion", dist.dist.python_version),
        ("sha256_digest", dist.hashes["sha256"]),
        ("blake2_256_digest", dist.hashes["blake2_256"]),
    ]
    by_name: Mapping[str, object] = meta  # looked up by the names in _SINGLE and _MULTI
    for key, field in _SINGLE.items():
        if by_name.get(key):
            fields.append((field, str(by_name[key])))
    if meta.get("keywords"):
        fields.append(("keywords", ",".join(meta["keywords"])))
    fields.append(("requires_python", str(meta.get("requires_python") or "")))
    for key, field in _MULTI.items():
        values = by_name.get(key) or []
        assert isinstance(values, list)  # packaging parses every multiple-use field to a list
        fields.extend((field, str(v)) for v in values)
    for label, url in (meta.get("project_urls") or {}).items():
        fields.append(("project_urls", f"{label}, {url}"))
    return fields


def _part_header(boundary: str, name: str, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
    if filename:
        head += "Content-Type: application/octet-stream\r\n"
    return (head + "\r\n").encode()


class FormBody:
    """multipart/form-data with an exact Content-Length, the file part streamed."""

    def __init__(self, dist: Dist, meter: Meter) -> None:
        self.boundary = secrets.token_hex(16)
        head = b"".join(
            _part_header(self.boundary, name) + value.encode() + b"\r\n"
            for name, value in form_fields(dist)
        )
        self.head = head + _part_header(self.boundary, "content", dist.filename)
        tail = b"\r\n"
        if dist.attestations:
            payload = json.dumps([json.loads(p.read_text()) for p in dist.attestations])
            tail += _part_header(self.boundary, "attestations") + payload.encode() + b"\r\n"
        self.tail = tail + f"--{self.boundary}--\r\n".encode()
        self.file = FileRange(dist.path, 0, dist.size, meter)
        self.length = len(self.head) + dist.size + len(self.tail)

    def __call__(self) -> Iterator[bytes]:
        def chunks() -> Iterator[bytes]:
            yield self.head
            yield from file_pass
            yield self.tail

        file_pass = self.file()
        return chunks()

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(self.length),
        }


def upload(transport: Transport, url: str, dist: Dist, meter: Meter) -> None:
    body = FormBody(dist, meter)
    # Retried like twine does: an identical re-upload is a no-op on PyPI-like indexes.
    transport.request("POST", url, idempotent=True, body=body, headers=body.headers)


def already_exists(exc: ClientError) -> bool:
    """twine's ``--skip-existing`` reading of a legacy answer: 409, or a 400 saying so."""
    return exc.status == 409 or (exc.status == 400 and "already exist" in str(exc).lower())
