"""Who is asking the web UI, and how its pages are answered: shared pages cached per serial
and compressed, private ones built per request, every one with the security headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pallet import __version__
from pallet.auth.tokens import Principal
from pallet.db.session import read_session
from pallet.index import negotiate
from pallet.index.cache import ETAG_SUFFIX, OFFERED
from pallet.public_url import base_url
from pallet.services import Services
from pallet.web import render, signin


class Visitor:
    """Who is asking, and what the page needs to know about it."""

    def __init__(self, svc: Services, request: Request, principal: Principal | None) -> None:
        self.svc, self.request, self.principal = svc, request, principal
        self.nonce = signin.csrf_nonce(request)

    @property
    def csrf(self) -> str:
        return signin.csrf_token(self.svc.settings.secret_key, self.nonce)

    def context(self, **values: Any) -> dict[str, Any]:
        return {
            "root": "/",
            "base": base_url(self.request),
            "principal": self.principal,
            "csrf": self.csrf if self.principal else "",
            "messages": [],
            # A private index names not even its release to strangers (CVE lookups).
            "version": "" if self.svc.settings.private else __version__,
            **values,
        }


def _services(request: Request) -> Services:
    return request.app.state.services


async def current_visitor(request: Request) -> Visitor:
    """Without a session cookie nobody is signed in: no database read, no thread hop."""
    svc = _services(request)
    if signin.COOKIE not in request.cookies:
        return Visitor(svc, request, None)

    def load() -> Principal | None:
        with read_session(svc.engine) as s:
            return signin.principal(s, svc.settings.secret_key, request)

    return Visitor(svc, request, await run_in_threadpool(load))


def html(body: str | bytes, visitor: Visitor | None, *, status: int = 200, etag: str | None = None,
          private: bool = False) -> Response:  # fmt: skip
    headers = dict(render.SECURITY_HEADERS)
    headers["Cache-Control"] = render.PRIVATE_CACHE if private else render.PUBLIC_CACHE
    if etag:
        headers["ETag"] = etag
    response = HTMLResponse(body, status_code=status, headers=headers)
    if visitor is not None and (private or visitor.principal is not None):
        signin.set_csrf(response, visitor.request, visitor.nonce)
    return response


def not_modified(request: Request, etag: str, vary: str | None = None) -> Response | None:
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        headers = {"ETag": etag, **render.SECURITY_HEADERS}
        if vary:
            headers["Vary"] = vary
        return Response(status_code=304, headers=headers)
    return None


def send(request: Request, visitor: Visitor, page: render.Page) -> Response:
    """A shared page, compressed when the client takes it (as the simple pages are)."""
    accepted = negotiate.codings(request.headers.get("accept-encoding"), OFFERED)
    coding = next((c for c in accepted if c in page.encoded), None)
    etag = page.etag if coding is None else f'{page.etag[:-1]}{ETAG_SUFFIX[coding]}"'
    vary = "Accept-Encoding" if page.encoded else None
    answer = not_modified(request, etag, vary)
    if answer is not None:
        return answer
    response = html(page.encoded[coding] if coding else page.body, visitor, etag=etag)
    if vary:
        response.headers["Vary"] = vary
    if coding:
        response.headers["Content-Encoding"] = coding
    return response


def error(visitor: Visitor, status: int, title: str, detail: str) -> Response:
    body = render.templates.get_template("error.html").render(
        visitor.context(title=title, detail=detail)
    )
    return html(body, visitor, status=status, private=True)


def to_signin(request: Request) -> Response:
    target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return RedirectResponse(f"/signin?next={target}", 303, headers=render.SECURITY_HEADERS)


def may_read(visitor: Visitor, project: str | None = None) -> bool:
    """A public index shows everyone everything; a private one what the token may read."""
    if not visitor.svc.settings.private:
        return True
    return visitor.principal is not None and visitor.principal.can_read(project)


async def cached_page(
    request: Request, visitor: Visitor, key: str, serial: int, build: Callable[[], str | None]
) -> Response | None:
    """A page built by ``build`` (in a worker thread), shared by signed-out visitors while
    ``serial`` holds; None when ``build`` finds nothing."""
    if visitor.principal is not None:
        text = await run_in_threadpool(build)
        return None if text is None else html(text, visitor, private=True)
    key = f"{base_url(request)}|{key}"  # the snippets name the URL the page was asked under
    page = visitor.svc.web_pages.get(key, serial)
    if page is None:

        def build_page() -> render.Page | None:
            text = build()
            return None if text is None else render.Page.build(serial, text)

        page = await visitor.svc.builds.run(("web", key, serial), build_page)
        if page is None:
            return None
        visitor.svc.web_pages.put(key, page)
    return send(request, visitor, page)
