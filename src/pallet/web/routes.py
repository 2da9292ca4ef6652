"""The web UI's pages and forms.

Pages are cached like the simple API: a signed-out page is built once per project serial (so a
publish or yank shows on the next request, on every replica) and answered with an ETag, and
every page carries a strict Content-Security-Policy. Signed-in pages are ``private`` and built per
request (they hold the user's CSRF token and what the token may do). Private mode shows a
signed-out visitor nothing but the sign-in page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from packaging.utils import canonicalize_name
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pallet.auth.tokens import Principal, verify_token
from pallet.connections import read_bounded
from pallet.core.problems import Problem
from pallet.db.session import read_session
from pallet.proxy.audit import Query
from pallet.releases import set_yanked
from pallet.upload.v2 import actions
from pallet.web import pages, render, signin
from pallet.web.answers import (
    Visitor,
    cached_page,
    current_visitor,
    error,
    html,
    may_read,
    to_signin,
)

MAX_FORM = 16 * 1024


# --- pages ---------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    visitor = await current_visitor(request)
    if not may_read(visitor):
        return to_signin(request)
    svc = visitor.svc
    serial = await svc.lookup.index_serial_async()

    def build() -> str:
        with read_session(svc.engine) as s:
            data = pages.home(s, visitor.principal)
        return render.templates.get_template("home.html").render(visitor.context(home=data))

    response = await cached_page(request, visitor, "home", serial, build)
    assert response is not None
    return response


async def project_page(request: Request) -> Response:
    visitor = await current_visitor(request)
    raw = request.path_params["project"]
    normalized = canonicalize_name(raw)
    version = request.path_params.get("version")
    if raw != normalized:
        return RedirectResponse(
            f"/project/{normalized}/" + (f"{quote(version)}/" if version else ""), 301
        )
    if not may_read(visitor, normalized):
        if visitor.principal is None:
            return to_signin(request)
        return error(visitor, 403, "Not allowed", f"This token cannot read {normalized!r}.")
    svc = visitor.svc
    row = await svc.lookup.project_async(normalized)
    missing = error(visitor, 404, "Not found", f"No project {normalized!r} here.")
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

    response = await cached_page(
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
    visitor = await current_visitor(request)
    if not may_read(visitor):
        return to_signin(request)
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
    return html(body, visitor, private=visitor.principal is not None)


async def signin_page(request: Request) -> Response:
    visitor = await current_visitor(request)
    svc = visitor.svc
    if request.method == "GET":
        return _signin_form(visitor, request.query_params.get("next", "/"))
    form = await _form(request)
    if not signin.csrf_ok(svc.settings.secret_key, request, form.get("csrf")):
        return error(visitor, 403, "Form expired", "Reload the page and try again.")
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


def _signin_form(visitor: Visitor, next_url: str, message: str = "", status: int = 200) -> Response:
    context = visitor.context(next=_local(next_url), messages=[message] if message else [])
    context["csrf"] = visitor.csrf
    body = render.templates.get_template("signin.html").render(context)
    return html(body, visitor, status=status, private=True)


def _local(url: str) -> str:
    """Only a path of this site is a place to go after signing in (no open redirect)."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return "/"
    return url


async def signout(request: Request) -> Response:
    visitor = await current_visitor(request)
    form = await _form(request)
    if not signin.csrf_ok(visitor.svc.settings.secret_key, request, form.get("csrf")):
        return error(visitor, 403, "Form expired", "Reload the page and try again.")
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


async def _signed_in_form(request: Request) -> tuple[Visitor, dict[str, Any]] | Response:
    """The visitor and the form of a state-changing POST, or the answer that refuses it."""
    visitor = await current_visitor(request)
    form = await _form(request)
    if visitor.principal is None:
        return to_signin(request)
    if not signin.csrf_ok(visitor.svc.settings.secret_key, request, form.get("csrf")):
        return error(visitor, 403, "Form expired", "Reload the page and try again.")
    return visitor, form


async def sessions_page(request: Request) -> Response:
    visitor = await current_visitor(request)
    if visitor.principal is None:
        return to_signin(request)
    svc, principal = visitor.svc, visitor.principal

    def load() -> list:
        with read_session(svc.engine) as s:
            return pages.staged_sessions(s, principal)

    staged = [s for s in await run_in_threadpool(load) if principal.can_upload(s.project)]
    body = render.templates.get_template("sessions.html").render(visitor.context(sessions=staged))
    return html(body, visitor, private=True)


async def proxy_audit_page(request: Request) -> Response:
    """The upstream proxy's audit log for a signed-in token, as ``/_/proxy/audit`` answers it."""
    visitor = await current_visitor(request)
    if visitor.principal is None:
        return to_signin(request)
    svc, principal = visitor.svc, visitor.principal

    def load() -> tuple[Query, list]:
        query = Query.parse(request.query_params)
        with read_session(svc.engine) as s:
            return query, query.read(s, principal)

    try:
        query, entries = await run_in_threadpool(load)
    except Problem as exc:
        return error(visitor, exc.status, exc.title, exc.detail)
    body = render.templates.get_template("proxy_audit.html").render(
        visitor.context(entries=entries, project=query.project, older=query.older(entries))
    )
    return html(body, visitor, private=True)


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
            return error(visitor, 404, "Not found", f"No action {action!r}.")
    except Problem as exc:
        return error(visitor, exc.status, exc.title, exc.detail)
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
        return error(visitor, 403, "Not allowed", f"This token cannot manage {normalized!r}.")
    yank = form.get("action") != "unyank"
    reason = str(form.get("reason") or "").strip()[:500] or None
    try:
        await run_in_threadpool(
            lambda: set_yanked(visitor.svc.engine, normalized, version, yanked=yank, reason=reason)
        )
    except Problem as exc:
        return error(visitor, exc.status, exc.title, exc.detail)
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
