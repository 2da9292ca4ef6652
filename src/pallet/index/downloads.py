"""File and PEP 658 ``.metadata`` downloads, streamed from the blob store with Range support.

URLs are ``/files/<sha256>/<filename>``: content-addressed, so responses are immutable and
cacheable forever; the database is still asked, so only published files are served.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from pallet.auth.guard import reader
from pallet.core.problems import Problem
from pallet.core.ranges import parse_range
from pallet.db.clock import aware
from pallet.db.models import File, Project, ProxiedFile, Release
from pallet.db.session import read as db_read
from pallet.db.session import read_session
from pallet.db.session import write as db_write
from pallet.http import etag_matches
from pallet.services import Services
from pallet.storage import blob_key

METADATA_SUFFIX = ".metadata"


def _not_found() -> Problem:
    return Problem(404, "not-found", "File not found", "No published file at this URL.")


def _lookup(svc: Services, sha256: str, filename: str) -> tuple[str, str] | None:
    """(blob sha256, project) for a published file or its extracted metadata."""
    if "\x00" in filename:  # never a published filename, and PostgreSQL refuses NUL in text
        return None
    wants_metadata = filename.endswith(METADATA_SUFFIX)
    name = filename[: -len(METADATA_SUFFIX)] if wants_metadata else filename
    with read_session(svc.engine) as s:
        row = s.execute(
            select(File.sha256, File.metadata_sha256, Project.normalized_name)
            .join(Release, File.release_id == Release.id)
            .join(Project, Release.project_id == Project.id)
            .where(File.filename == name, File.published.is_(True))
        ).first()
    if row is None or row.sha256 != sha256:
        return None
    if wants_metadata:
        return (row.metadata_sha256, row.normalized_name) if row.metadata_sha256 else None
    return (row.sha256, row.normalized_name)


async def download(request: Request) -> Response:
    svc: Services = request.app.state.services
    sha256, filename = request.path_params["sha256"], request.path_params["filename"]
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise _not_found()
    found = await run_in_threadpool(_lookup, svc, sha256, filename)
    if found is None:
        return await _upstream_file(request, svc, sha256, filename)
    blob_sha, project = found
    await reader(svc, request, project)
    return await serve_blob(request, svc, blob_sha, filename)


async def serve_blob(request: Request, svc: Services, blob_sha: str, filename: str) -> Response:
    key = blob_key(blob_sha)
    size = await run_in_threadpool(svc.store.size, key)
    if size is None:
        raise _not_found()
    etag = f'"{blob_sha}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": ("private, " if svc.settings.private else "public, ")
        + "max-age=31536000, immutable",
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    media = (
        "text/plain; charset=utf-8"
        if filename.endswith(METADATA_SUFFIX)
        else ("application/octet-stream")
    )
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    presign_get = getattr(svc.store, "presign_get", None)
    if svc.settings.download_redirect and presign_get is not None:
        window = svc.settings.download_url_window
        url = await run_in_threadpool(presign_get, key, filename=filename, window=window)
        return RedirectResponse(
            url, 307, headers={"Cache-Control": f"private, max-age={window // 2}"}
        )
    if_range = request.headers.get("if-range")
    byte_range = (
        None if if_range not in (None, etag) else parse_range(request.headers.get("range"), size)
    )
    start, end, status = 0, size, 200
    if byte_range is not None:
        start, end = byte_range
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media)
    # The store is asked for the first chunk before the answer starts: a store that fails now
    # (restarting, unreachable) gets the client a 503 instead of a 200 that ends after no bytes.
    chunks = svc.store.iter_bytes(key, start, end)
    first = await run_in_threadpool(next, chunks, b"")
    return StreamingResponse(
        itertools.chain((first,), chunks), status_code=status, headers=headers, media_type=media
    )


def _proxied_file(svc: Services, sha256: str, filename: str) -> ProxiedFile | None:
    with read_session(svc.engine) as s:
        row = s.get(ProxiedFile, sha256)
        if row is not None:
            s.expunge(row)
    if row is None:
        return None
    if filename == row.filename + METADATA_SUFFIX:
        return row if row.metadata_sha256 else None
    return row if row.filename == filename else None


async def _upstream_file(request: Request, svc: Services, sha256: str, filename: str) -> Response:
    """A file an upstream's page listed: from the store once fetched, else fetched now (or
    joined, if another request is fetching it), streamed while it is checked and stored."""
    proxy = svc.proxy()
    row = await run_in_threadpool(_proxied_file, svc, sha256, filename) if proxy else None
    if proxy is None or row is None:
        raise _not_found()
    # Here, not at the top: an index without an upstream never loads the proxy's HTTP client.
    from pallet.proxy.files import USE_GRANULARITY, Wanted, fetch_metadata, used

    await reader(svc, request, row.project)
    route, _current = await db_read(svc.engine, lambda s: proxy.route(s, row.project))
    if not route.goes_upstream:  # claimed since its page was served
        raise _not_found()
    metadata = filename.endswith(METADATA_SUFFIX)
    stored, blob = (row.metadata_stored, row.metadata_sha256) if metadata else (row.stored, sha256)
    assert blob is not None  # _proxied_file returns metadata rows only with their digest
    if stored and await run_in_threadpool(svc.store.size, blob_key(blob)) is not None:
        last = row.last_used
        if last is None or (datetime.now(UTC) - aware(last)).total_seconds() > USE_GRANULARITY:
            await db_write(svc.engine, lambda s: used(s, sha256))  # eviction's order
        return await serve_blob(request, svc, blob, filename)
    upstream = next((u for u in proxy.upstreams if u.name == row.upstream), None)
    if upstream is None or proxy.offline:
        raise Problem(404, "not-found", "File not stored",
                      "This file is not stored here and its upstream is not asked.")  # fmt: skip
    wanted = Wanted(sha256, row.filename, row.url, row.size, upstream, row.project, route.reason)
    if metadata:
        refused = await svc.builds.run(
            ("metadata", sha256), lambda: fetch_metadata(svc, proxy.client, wanted, blob)
        )
        if refused is not None:
            raise Problem(502, "upstream-refused", "Upstream file refused",
                          f"{filename}: {refused}.")  # fmt: skip
        return await serve_blob(request, svc, blob, filename)
    headers = {
        "ETag": f'"{sha256}"',
        "Cache-Control": ("private, " if svc.settings.private else "public, ")
        + "max-age=31536000, immutable",
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    if row.size is not None:
        headers["Content-Length"] = str(row.size)
    if request.method == "HEAD":  # answered from the page's listing: no download for a HEAD
        return Response(status_code=200, headers=headers, media_type="application/octet-stream")
    loop = asyncio.get_running_loop()
    joined = await run_in_threadpool(proxy.downloads.join_or_start, wanted, loop)
    if joined is None:  # stored a moment ago
        return await serve_blob(request, svc, sha256, filename)
    download, spool, live = joined
    timeout = svc.settings.upstream_timeout
    body = download.stream(live, spool, timeout) if live else download.chunks(spool, timeout)
    return StreamingResponse(body, headers=headers, media_type="application/octet-stream")
