"""The read path's share of the upstream proxy: an upstream's project page in the simple API's
model (file URLs made this index's own), and its answers' stale warning."""

from __future__ import annotations

from pallet.core.upstream_page import UpstreamProject
from pallet.index import render
from pallet.index.cache import Rendered
from pallet.index.model import FileEntry, ProjectPage
from pallet.index.queries import file_url

#: Rendered entries of upstream pages are kept under this prefix (private pages: the name).
KEY = "upstream:"


def build(project: UpstreamProject, version: int) -> Rendered:
    """Every file, and its PEP 658 metadata when the upstream offers it, is served from
    ``/files/<sha256>/...`` here, fetched and checked on first use. Provenance is not offered
    (not proxied)."""
    files = [
        FileEntry(
            filename=f.filename,
            url=file_url(f.sha256, f.filename),
            sha256=f.sha256,
            size=f.size,
            upload_time=f.upload_time,
            requires_python=f.requires_python,
            yanked=f.yanked,
            core_metadata_sha256=f.core_metadata_sha256,
        )
        for f in project.files
    ]
    page = ProjectPage(project.name, project.name, version, files, project.versions)
    return Rendered.build(version, render.project_html(page), render.project_json(page), source="u")


def stale_headers(why: str) -> list[tuple[bytes, bytes]]:
    """Served from the stored copy because the upstream failed: RFC 7234's Warning 110 (what
    caches and people look for) and the reason (ASCII, no secrets: upstream names only)."""
    reason = why.encode("ascii", "replace")[:300]
    return [(b"warning", b'110 pallet "Response is Stale"'), (b"x-pallet-stale", reason)]
