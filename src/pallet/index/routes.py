"""Read-path endpoints: ``/simple/``, ``/simple/<project>/``, file and ``.metadata`` downloads.

Pages are served from ``PageCache`` after one serial check (``SerialLookup``, which never waits
on the network on the event loop); builds happen in a worker thread.
Responses carry an ETag (the serial) and ``Cache-Control: max-age=0, must-revalidate`` so HTTP
caches revalidate cheaply yet a publish shows up on the next request.

Pages over ``cache.COMPRESS_MIN`` bytes are also sent gzip- (or br-) compressed to clients whose
``Accept-Encoding`` asks for it, from bytes compressed once per build: such answers say
``Vary: Accept-Encoding`` and carry their own ETag per coding (``"s7-j-gz"``). Downloads are
never compressed (wheels and sdists already are).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pallet.auth.guard import reader
from pallet.core.problems import Problem
from pallet.db.session import read as db_read
from pallet.db.session import read_session
from pallet.http import etag_matches
from pallet.index import negotiate, proxied, queries, render
from pallet.index.cache import ETAG_SUFFIX, OFFERED, Rendered
from pallet.index.downloads import download
from pallet.public_url import redirect
from pallet.services import Services

if TYPE_CHECKING:  # the proxy's modules load only with an upstream configured
    from pallet.proxy.pages import Proxied

log = logging.getLogger("pallet.proxy")

_PAGE_CACHE_CONTROL = "max-age=0, must-revalidate"
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def _services(request: Request) -> Services:
    return request.app.state.services


_ETAG_SUFFIX = {negotiate.JSON: "j", negotiate.HTML: "v", negotiate.TEXT_HTML: "h"}


def _not_acceptable(why: str) -> Problem:
    available = ", ".join((negotiate.JSON, negotiate.HTML, negotiate.TEXT_HTML))
    return Problem(406, "not-acceptable", "Not acceptable", f"{why} Available: {available}.")


def _media(request: Request) -> tuple[str, bool]:
    """The media type to serve, and whether ``Accept`` chose it (else ``?format=`` did)."""
    if request.scope.get("query_string"):  # parsing an absent query costs every request
        formats = request.query_params.getlist(negotiate.FORMAT_PARAM)
        if formats:
            try:
                return negotiate.from_format(formats), False
            except negotiate.Unsupported as exc:
                raise _not_acceptable(str(exc)) from None
    media = negotiate.choose(request.headers.get("accept"))
    if media is None:
        raise _not_acceptable("The Accept header names no format this index serves.")
    return media, True


@dataclass(frozen=True, slots=True)
class Answer:
    """A page answer ready to send: status, raw header list (shared: copy before changing)
    and body (empty for a 304)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def answer(
    entry: Rendered,
    media: str,
    by_accept: bool,
    accept_encoding: str | None,
    if_none_match: str | None,
    private: bool,
) -> Answer:
    """The answer to a request for ``entry`` in ``media``. The headers of each representation
    are made once per entry and kept on it, so a request only negotiates and compares ETags."""
    if media == negotiate.JSON:
        encoded = entry.json_encoded
    else:
        encoded = entry.html_encoded
    coding = None
    if encoded:  # this body comes compressed too: which one is sent depends on Accept-Encoding
        for wanted in negotiate.codings(accept_encoding, OFFERED):
            if wanted in encoded:
                coding = wanted
                break
    key = (media, by_accept, coding, private)
    prepared = entry.answers.get(key)
    if prepared is None:
        prepared = entry.answers[key] = _prepare(entry, media, by_accept, coding, private)
    etag, ok, not_modified = prepared
    if if_none_match and etag_matches(if_none_match, etag):
        return not_modified
    return ok


def _prepare(
    entry: Rendered, media: str, by_accept: bool, coding: str | None, private: bool
) -> tuple[str, Answer, Answer]:
    """(ETag, the 200, the 304) of one representation of ``entry``, with the headers Starlette's
    ``Response`` would have made, in its order."""
    if media == negotiate.JSON:
        body, encoded = entry.json, entry.json_encoded
    else:
        body, encoded = entry.html, entry.html_encoded
    # The URL, query included, is every cache's key. ``?format=`` fixes the representation, so
    # such an answer does not depend on Accept; without it, it does.
    vary = (["Accept"] if by_accept else []) + (["Authorization"] if private else [])
    if encoded:
        vary.append("Accept-Encoding")
    # One ETag per representation (the HTML bodies are equal, their Content-Types are not) and
    # per content coding, so a cache revalidating several stored variants of a URL cannot swap
    # one for another.
    etag = f'{entry.etag[:-1]}-{_ETAG_SUFFIX[media]}{ETAG_SUFFIX[coding] if coding else ""}"'
    cache_control = ("private, " if private else "") + _PAGE_CACHE_CONTROL
    common = [(b"etag", etag.encode()), (b"cache-control", cache_control.encode())]
    if vary:
        common.append((b"vary", ", ".join(vary).encode()))
    not_modified = Answer(304, common, b"")
    if coding is not None:
        body = encoded[coding]
        common = [*common, (b"content-encoding", coding.encode())]
    content_type = media + ("; charset=utf-8" if media.startswith("text/") else "")
    ok = Answer(
        200,
        [
            *common,
            (b"content-length", str(len(body)).encode()),
            (b"content-type", content_type.encode()),
        ],
        body,
    )
    return etag, ok, not_modified


class _Sent(Response):
    """A prepared ``Answer`` as a Starlette response (no header building per request)."""

    def __init__(self, prepared: Answer) -> None:
        self.status_code = prepared.status
        self.raw_headers = list(prepared.headers)  # middleware may add to its own copy
        self.body = prepared.body
        self.background = None


def _respond(request: Request, entry: Rendered, private: bool) -> Response:
    media, by_accept = _media(request)
    headers = request.headers
    return _Sent(
        answer(
            entry,
            media,
            by_accept,
            headers.get("accept-encoding"),
            headers.get("if-none-match"),
            private,
        )
    )


async def project_list(request: Request) -> Response:
    svc = _services(request)
    principal = await reader(svc, request)
    if principal is not None and principal.projects is not None:
        # A token limited to some projects sees only those: built per request, so (unlike the
        # shared list) not compressed, which would cost each request the CPU it saves on bytes.
        own = await run_in_threadpool(_build_list, svc, principal.projects)
        return _respond(request, own, svc.settings.private)
    serial = await svc.lookup.index_serial_async()
    entry = svc.pages.get("/", serial)
    if entry is None:
        entry = await svc.builds.run(("simple", "/", serial), lambda: _build_list(svc, None))
        svc.pages.put("/", entry)
    return _respond(request, entry, svc.settings.private)


def _build_list(svc: Services, only: Collection[str] | None) -> Rendered:
    with read_session(svc.engine) as s:
        listing = queries.project_list(s)
    if only is None:
        return Rendered.build(listing.serial, render.list_html(listing), render.list_json(listing))
    listing.projects[:] = [p for p in listing.projects if p[1] in only]
    return Rendered(listing.serial, render.list_html(listing), render.list_json(listing))


async def project_detail(request: Request) -> Response:
    svc = _services(request)
    name = request.path_params["project"]
    normalized = canonicalize_name(name) if _NAME.match(name) else None
    if normalized is None:
        raise Problem(404, "not-found", "Not found", "Not a valid project name.")
    if name != normalized or not request.scope["path"].endswith("/"):
        return redirect(request, f"/simple/{normalized}/")
    await reader(svc, request, normalized)
    row = await svc.lookup.project_async(normalized)
    if row is None:
        upstream = await _upstream_page(request, svc, normalized)
        if upstream is not None:
            return upstream
        raise Problem(404, "not-found", "Project not found", f"No project named {name!r}.")
    _id, _display, serial = row
    entry = svc.pages.get(normalized, serial)
    if entry is None:
        entry = await svc.builds.run(
            ("simple", normalized, serial), lambda: _build_page(svc, normalized)
        )
        if entry is None:
            raise Problem(404, "not-found", "Project not found", f"No project named {name!r}.")
        svc.pages.put(normalized, entry)
    return _respond(request, entry, svc.settings.private)


async def _upstream_page(request: Request, svc: Services, normalized: str) -> Response | None:
    """A project this index does not have, from the upstream routing sends it to; None when
    routing sends it nowhere or no upstream has it. Nothing is asked upstream unless routing
    says so, and a fresh stored page is answered without asking."""
    proxy = svc.proxy()
    if proxy is None:
        return None
    route, current = await db_read(svc.engine, lambda s: proxy.route(s, normalized))
    if not route.goes_upstream:
        return None
    key = proxied.KEY + normalized
    warning = None
    entry = None

    def fetch() -> Awaitable[Proxied | None]:
        return svc.builds.run(
            ("upstream", normalized), lambda: proxy.pages.get(normalized, route, proxy.offline)
        )

    if current is not None and (current.fresh or proxy.offline):
        entry = svc.pages.get(key, current.version)
        proxy.saw_fresh(normalized, current.fresh_for)
    elif current is not None and current.fresh_for > -svc.settings.upstream_stale_while_revalidate:
        # Just expired (RFC 5861's stale-while-revalidate): answered from the stored page at
        # once, revalidated in the background for the requests that follow.
        entry = svc.pages.get(key, current.version)
        if entry is not None:
            _in_background(fetch())
    if entry is None:
        found = await fetch()
        if found is None:
            return None
        warning = found.warning
        proxy.saw_fresh(normalized, found.fresh_for)
        entry = svc.pages.get(key, found.version)
        if entry is None:
            entry = await run_in_threadpool(proxied.build, found.project, found.version)
            svc.pages.put(key, entry)
    response = _respond(request, entry, svc.settings.private)
    if warning:
        response.raw_headers += proxied.stale_headers(warning)
    return response


_BACKGROUND: set[asyncio.Future[object]] = set()  # held until done (the loop keeps weak refs)


def _in_background(work: Awaitable[object]) -> None:
    """Run ``work`` past this response; its failure is logged, never raised to anyone."""
    task = asyncio.ensure_future(work)
    _BACKGROUND.add(task)

    def done(t: asyncio.Future[object]) -> None:
        _BACKGROUND.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.warning("proxy: a background revalidation failed: %s", t.exception())

    task.add_done_callback(done)


def _build_page(svc: Services, normalized: str) -> Rendered | None:
    with read_session(svc.engine) as s:
        project = queries.visible_project(s, normalized)
        page = queries.project_page(s, project) if project else None
    if page is None:
        return None
    return Rendered.build(page.serial, render.project_html(page), render.project_json(page))


routes = [
    Route("/simple/", project_list, methods=["GET", "HEAD"]),
    Route("/simple", lambda r: redirect(r, "/simple/")),
    Route("/simple/{project}/", project_detail, methods=["GET", "HEAD"]),
    Route("/simple/{project}", project_detail, methods=["GET", "HEAD"]),
    Route("/files/{sha256}/{filename}", download, methods=["GET", "HEAD"]),
]
