"""The web UI's pages and forms.

Pages are cached like the simple API: a signed-out page is built once per project serial (so a
publish or yank shows on the next request, on every replica) and answered with an ETag, and
every page carries a strict Content-Security-Policy. Signed-in pages are ``private`` and built per
request (they hold the user's CSRF token and what the token may do). Private mode shows a
signed-out visitor nothing but the sign-in page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from packaging.utils import canonicalize_name
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pallet import __version__
from pallet.auth.tokens import Principal, verify_token
from pallet.connections import read_bounded
from pallet.core.problems import Problem
from pallet.db import audit
from pallet.db.session import read_session
from pallet.index import negotiate
from pallet.index.cache import ETAG_SUFFIX, OFFERED
from pallet.public_url import base_url
from pallet.releases import set_yanked
from pallet.services import Services
from pallet.upload.v2 import actions
from pallet.web import pages, render, signin

MAX_FORM = 16 * 1024
PROXY_AUDIT_PAGE = 100


class _Visitor:
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


async def _visitor(request: Request) -> _Visitor:
    """Without a session cookie nobody is signed in: no database read, no thread hop."""
    svc = _services(request)
    if signin.COOKIE not in request.cookies:
        return _Visitor(svc, request, None)

    def load() -> Principal | None:
        with read_session(svc.engine) as s:
            return signin.principal(s, svc.settings.secret_key, request)

    return _Visitor(svc, request, await run_in_threadpool(load))


def _html(body: str | bytes, visitor: _Visitor | None, *, status: int = 200, etag: str | None = None,
          private: bool = False) -> Response:  # fmt: skip
    headers = dict(render.SECURITY_HEADERS)
    headers["Cache-Control"] = render.PRIVATE_CACHE if private else render.PUBLIC_CACHE
    if etag:
        headers["ETag"] = etag
    response = HTMLResponse(body, status_code=status, headers=headers)
    if visitor is not None and (private or visitor.principal is not None):
        signin.set_csrf(response, visitor.request, visitor.nonce)
    return response


def _not_modified(request: Request, etag: str, vary: str | None = None) -> Response | None:
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        headers = {"ETag": etag, **render.SECURITY_HEADERS}
        if vary:
            headers["Vary"] = vary
        return Response(status_code=304, headers=headers)
    return None


def _send(request: Request, visitor: _Visitor, page: render.Page) -> Response:
    """A shared page, compressed when the client takes it (as the simple pages are)."""
    accepted = negotiate.codings(request.headers.get("accept-encoding"), OFFERED)
    coding = next((c for c in accepted if c in page.encoded), None)
    etag = page.etag if coding is None else f'{page.etag[:-1]}{ETAG_SUFFIX[coding]}"'
    vary = "Accept-Encoding" if page.encoded else None
    answer = _not_modified(request, etag, vary)
    if answer is not None:
        return answer
    response = _html(page.encoded[coding] if coding else page.body, visitor, etag=etag)
    if vary:
        response.headers["Vary"] = vary
    if coding:
        response.headers["Content-Encoding"] = coding
    return response


def _error(visitor: _Visitor, status: int, title: str, detail: str) -> Response:
    body = render.templates.get_template("error.html").render(
        visitor.context(title=title, detail=detail)
    )
    return _html(body, visitor, status=status, private=True)


def _to_signin(request: Request) -> Response:
    target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return RedirectResponse(f"/signin?next={target}", 303, headers=render.SECURITY_HEADERS)


def _may_read(visitor: _Visitor, project: str | None = None) -> bool:
    """A public index shows everyone everything; a private one what the token may read."""
    if not visitor.svc.settings.private:
        return True
    return visitor.principal is not None and visitor.principal.can_read(project)


async def _cached_page(
    request: Request, visitor: _Visitor, key: str, serial: int, build: Callable[[], str | None]
) -> Response | None:
    """A page built by ``build`` (in a worker thread), shared by signed-out visitors while
    ``serial`` holds; None when ``build`` finds nothing."""
    if visitor.principal is not None:
        text = await run_in_threadpool(build)
        return None if text is None else _html(text, visitor, private=True)
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
    return _send(request, visitor, page)


# --- pages ---------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    visitor = await _visitor(request)
    if not _may_read(visitor):
        return _to_signin(request)
    svc = visitor.svc
    serial = await svc.lookup.index_serial_async()

    def build() -> str:
        with read_session(svc.engine) as s:
            data = pages.home(s, visitor.principal)
        return render.templates.get_template("home.html").render(visitor.context(home=data))

    response = await _cached_page(request, visitor, "home", serial, build)
    assert response is not None
    return response


async def project_page(request: Request) -> Response:
    visitor = await _visitor(request)
    raw = request.path_params["project"]
    normalized = canonicalize_name(raw)
    version = request.path_params.get("version")
    if raw != normalized:
        return RedirectResponse(
            f"/project/{normalized}/" + (f"{quote(version)}/" if version else ""), 301
        )
    if not _may_read(visitor, normalized):
        if visitor.principal is None:
            return _to_signin(request)
        return _error(visitor, 403, "Not allowed", f"This token cannot read {normalized!r}.")
    svc = visitor.svc
    row = await svc.lookup.project_async(normalized)
    missing = _error(visitor, 404, "Not found", f"No project {normalized!r} here.")
    if row is None:
        return missing
    can_upload = visitor.principal is not None and visitor.principal.can_upload(normalized)

    def build() -> str | None:
        with read_session(svc.engine) as s:
            view = pages.project(s, normalized, version)
        if view is None:
            return None
        readme = render.readmes.get(
            view.info.get("description"), view.info.get("description_content_type")
        )
        return render.templates.get_template("project.html").render(
            visitor.context(view=view, readme=readme, urls=_urls(view.info), can_upload=can_upload)
        )

    response = await _cached_page(
        request,
        visitor,
        f"project/{normalized}/{version or ''}",
        row[2],
        build,  # (id, name, last_serial)
    )
    return response or missing


def _urls(info: dict[str, Any]) -> list[tuple[str, str]]:
    """Project-URL and Home-page links that are http(s), never ``javascript:`` or such."""
    pairs = list((info.get("project_urls") or {}).items())
    if info.get("home_page"):
        pairs.insert(0, ("Homepage", info["home_page"]))
    return [(label, url) for label, url in pairs if urlsplit(str(url)).scheme in ("http", "https")]


async def search_page(request: Request) -> Response:
    visitor = await _visitor(request)
    if not _may_read(visitor):
        return _to_signin(request)
    query = request.query_params.get("q", "")[:200]
    svc = visitor.svc
    from pallet.index.search import search

    def find() -> list:
        if not query.strip():
            return []
        projects = visitor.principal.projects if visitor.principal else None
        with read_session(svc.engine) as s:
            return search(s, query, limit=50, projects=projects)

    hits = await run_in_threadpool(find)
    body = render.templates.get_template("search.html").render(
        visitor.context(query=query, hits=hits)
    )
    return _html(body, visitor, private=visitor.principal is not None)


async def signin_page(request: Request) -> Response:
    visitor = await _visitor(request)
    svc = visitor.svc
    if request.method == "GET":
        return _signin_form(visitor, request.query_params.get("next", "/"))
    form = await _form(request)
    if not signin.csrf_ok(svc.settings.secret_key, request, form.get("csrf")):
        return _error(visitor, 403, "Form expired", "Reload the page and try again.")
    token = str(form.get("token") or "").strip()

    def check() -> Principal | None:
        with read_session(svc.engine) as s:
            return verify_token(s, svc.settings.secret_key, token) if token else None

    principal = await run_in_threadpool(check)
    if principal is None or principal.inactive_reason:
        why = "That token is not valid here." if principal is None else (
            f"That token was {principal.inactive_reason}."
        )  # fmt: skip
        return _signin_form(visitor, str(form.get("next") or "/"), why, status=401)
    response = RedirectResponse(
        _local(str(form.get("next") or "/")), 303, headers=render.SECURITY_HEADERS
    )
    signin.open_session(response, request, svc.settings.secret_key, principal.token_id)
    return response


def _signin_form(
    visitor: _Visitor, next_url: str, message: str = "", status: int = 200
) -> Response:
    context = visitor.context(next=_local(next_url), messages=[message] if message else [])
    context["csrf"] = visitor.csrf
    body = render.templates.get_template("signin.html").render(context)
    return _html(body, visitor, status=status, private=True)


def _local(url: str) -> str:
    """Only a path of this site is a place to go after signing in (no open redirect)."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return "/"
    return url


async def signout(request: Request) -> Response:
    visitor = await _visitor(request)
    form = await _form(request)
    if not signin.csrf_ok(visitor.svc.settings.secret_key, request, form.get("csrf")):
        return _error(visitor, 403, "Form expired", "Reload the page and try again.")
    response = RedirectResponse("/", 303, headers=render.SECURITY_HEADERS)
    signin.close_session(response)
    return response


async def _form(request: Request) -> dict[str, Any]:
    """The fields of one of our forms (``application/x-www-form-urlencoded``), read within
    ``MAX_FORM`` bytes whatever the request declares; a repeated field keeps its first value."""
    body = await read_bounded(request, MAX_FORM, "Forms")
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=20)
    except ValueError:
        raise Problem(400, "bad-form", "Bad form", "Too many fields.") from None
    return {k: v[0] for k, v in fields.items()}


async def _signed_in_form(request: Request) -> tuple[_Visitor, dict[str, Any]] | Response:
    """The visitor and the form of a state-changing POST, or the answer that refuses it."""
    visitor = await _visitor(request)
    form = await _form(request)
    if visitor.principal is None:
        return _to_signin(request)
    if not signin.csrf_ok(visitor.svc.settings.secret_key, request, form.get("csrf")):
        return _error(visitor, 403, "Form expired", "Reload the page and try again.")
    return visitor, form


async def sessions_page(request: Request) -> Response:
    visitor = await _visitor(request)
    if visitor.principal is None:
        return _to_signin(request)
    svc, principal = visitor.svc, visitor.principal

    def load() -> list:
        with read_session(svc.engine) as s:
            return pages.staged_sessions(s, principal)

    staged = [s for s in await run_in_threadpool(load) if principal.can_upload(s.project)]
    body = render.templates.get_template("sessions.html").render(visitor.context(sessions=staged))
    return _html(body, visitor, private=True)


async def proxy_audit_page(request: Request) -> Response:
    """The upstream proxy's audit log, for a signed-in token: the whole of it, or the entries
    of the projects a limited token covers (as ``/_/proxy/audit`` answers it)."""
    visitor = await _visitor(request)
    if visitor.principal is None:
        return _to_signin(request)
    svc, principal = visitor.svc, visitor.principal
    raw = request.query_params.get("project") or None
    project = canonicalize_name(raw) if raw else None
    before_raw = request.query_params.get("before", "")
    # An id, or the first page: never a number the database's BIGINT cannot hold.
    valid = before_raw.isascii() and before_raw.isdigit() and len(before_raw) <= 18
    before = int(before_raw) if valid else None
    if project is not None and not principal.can_read(project):
        return _error(visitor, 403, "Not allowed", f"This token cannot read {project!r}.")

    def load() -> list:
        with read_session(svc.engine) as s:
            return audit.recent(s, project=project, limit=PROXY_AUDIT_PAGE, before=before,
                                within=principal.projects)  # fmt: skip

    entries = await run_in_threadpool(load)
    older = entries[-1].id if len(entries) == PROXY_AUDIT_PAGE else None
    body = render.templates.get_template("proxy_audit.html").render(
        visitor.context(entries=entries, project=project, older=older)
    )
    return _html(body, visitor, private=True)


async def session_action(request: Request) -> Response:
    """Publish or cancel a publishing session: what the API's endpoints do, through the same
    functions, with the same checks (the token must be able to upload to the project)."""
    checked = await _signed_in_form(request)
    if isinstance(checked, Response):
        return checked
    visitor, _form_values = checked
    sid, action = request.path_params["sid"], request.path_params["action"]
    assert visitor.principal is not None
    try:
        if action == "publish":
            await actions.publish(visitor.svc, request, visitor.principal, sid)
        elif action == "cancel":
            await actions.cancel(visitor.svc, visitor.principal, sid)
        else:
            return _error(visitor, 404, "Not found", f"No action {action!r}.")
    except Problem as exc:
        return _error(visitor, exc.status, exc.title, exc.detail)
    return RedirectResponse("/sessions", 303, headers=render.SECURITY_HEADERS)


async def yank_action(request: Request) -> Response:
    checked = await _signed_in_form(request)
    if isinstance(checked, Response):
        return checked
    visitor, form = checked
    normalized = canonicalize_name(request.path_params["project"])
    version = request.path_params["version"]
    assert visitor.principal is not None
    if not visitor.principal.can_upload(normalized):
        return _error(visitor, 403, "Not allowed", f"This token cannot manage {normalized!r}.")
    yank = form.get("action") != "unyank"
    reason = str(form.get("reason") or "").strip()[:500] or None
    try:
        await run_in_threadpool(
            lambda: set_yanked(visitor.svc.engine, normalized, version, yanked=yank, reason=reason)
        )
    except Problem as exc:
        return _error(visitor, exc.status, exc.title, exc.detail)
    return RedirectResponse(
        f"/project/{normalized}/{quote(version)}/", 303, headers=render.SECURITY_HEADERS
    )


routes = [
    Route("/", home, methods=["GET", "HEAD"]),
    Route("/search", search_page, methods=["GET", "HEAD"]),
    Route("/signin", signin_page, methods=["GET", "POST"]),
    Route("/signout", signout, methods=["POST"]),
    Route("/sessions", sessions_page, methods=["GET"]),
    Route("/proxy/audit", proxy_audit_page, methods=["GET"]),
    Route("/sessions/{sid}/{action:str}", session_action, methods=["POST"]),
    Route("/project/{project}/", project_page, methods=["GET", "HEAD"]),
    Route("/project/{project}/{version}/", project_page, methods=["GET", "HEAD"]),
    Route("/project/{project}/{version}/yank", yank_action, methods=["POST"]),
    Mount("/static", app=StaticFiles(packages=[("pallet.web", "static")]), name="static"),
]
