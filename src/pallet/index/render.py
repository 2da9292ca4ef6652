"""Serialise the simple-API model. API version 1.5: PEP 700's ``versions``, ``size`` and
``upload-time`` (1.1); PEP 658/714 ``core-metadata``; PEP 592 ``yanked``; PEP 740's
``provenance`` (1.3; ``null`` when a file has none); PEP 792's status markers (1.4) are optional
and absent, which means every project is ``active``; PEP 752's ``namespaces`` (1.5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape

from pallet.index.model import FileEntry, ProjectList, ProjectPage

API_VERSION = "1.5"


def iso8601(ts: datetime) -> str:
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _file_json(f: FileEntry) -> dict:
    out: dict = {
        "filename": f.filename,
        "url": f.url,
        "hashes": {"sha256": f.sha256},
        "requires-python": f.requires_python,
        "size": f.size,
        "upload-time": iso8601(f.upload_time) if f.upload_time else None,
        "yanked": False if f.yanked is None else (f.yanked or True),
        "core-metadata": {"sha256": f.core_metadata_sha256} if f.core_metadata_sha256 else False,
        # PEP 714 keeps the old key for clients that predate it.
        "dist-info-metadata": (
            {"sha256": f.core_metadata_sha256} if f.core_metadata_sha256 else False
        ),
        "provenance": f.provenance_url,
    }
    # An upstream's file may come without them (a page in HTML): left out, not made up.
    if f.size is None:
        del out["size"]
    if f.upload_time is None:
        del out["upload-time"]
    return out


def project_json(page: ProjectPage) -> bytes:
    body = {
        "meta": {"api-version": API_VERSION, "_last-serial": page.serial},
        "name": page.normalized_name,
        "versions": page.versions,
        "files": [_file_json(f) for f in page.files],
        "namespaces": page.namespaces,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _file_html(f: FileEntry) -> str:
    attrs = [f'href="{escape(f.url)}#sha256={f.sha256}"']
    if f.requires_python:
        attrs.append(f'data-requires-python="{escape(f.requires_python)}"')
    if f.yanked is not None:
        attrs.append(f'data-yanked="{escape(f.yanked)}"')
    if f.core_metadata_sha256:
        value = f"sha256={f.core_metadata_sha256}"
        attrs.append(f'data-core-metadata="{value}"')
        attrs.append(f'data-dist-info-metadata="{value}"')
    if f.provenance_url:
        attrs.append(f'data-provenance="{escape(f.provenance_url)}"')
    return f"    <a {' '.join(attrs)}>{escape(f.filename)}</a><br />\n"


def project_html(page: ProjectPage) -> bytes:
    title = escape(page.name)
    head = (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"    <title>Links for {title}</title>\n  </head>\n  <body>\n"
        f"    <h1>Links for {title}</h1>\n"
    )
    return (head + "".join(_file_html(f) for f in page.files) + "  </body>\n</html>\n").encode()


def list_json(listing: ProjectList) -> bytes:
    body = {
        "meta": {"api-version": API_VERSION, "_last-serial": listing.serial},
        "projects": [{"name": name} for name, _ in listing.projects],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def list_html(listing: ProjectList) -> bytes:
    links = "".join(
        f'    <a href="{escape(norm)}/">{escape(name)}</a><br />\n'
        for name, norm in listing.projects
    )
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        "    <title>Simple index</title>\n  </head>\n  <body>\n"
        f"{links}  </body>\n</html>\n"
    ).encode()
