"""PEP 752's namespace API: ``/namespaces`` (every namespace claimed here) and
``/namespace/<namespace>`` (its parent and direct children). Namespaces are this index's own
(``pallet claim 'acme-*'``); they also keep those names from every upstream (docs/proxy.md)."""

from __future__ import annotations

from packaging.utils import canonicalize_name
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pallet.auth.guard import reader
from pallet.core.problems import Problem
from pallet.db import claims
from pallet.db.session import read as db_read
from pallet.services import Services

_CACHE = {"Cache-Control": "max-age=0, must-revalidate"}


def _services(request: Request) -> Services:
    return request.app.state.services


async def namespace_list(request: Request) -> Response:
    svc = _services(request)
    await reader(svc, request)
    names = await db_read(svc.engine, claims.namespaces)
    return JSONResponse([{"name": n} for n in names], headers=_CACHE)


def parent_and_children(namespace: str, names: list[str]) -> tuple[str | None, list[str]]:
    """The nearest claimed namespace above ``namespace``, and those directly below it."""
    above = [n for n in names if namespace.startswith(n + "-")]
    below = [n for n in names if n.startswith(namespace + "-")]
    direct = [n for n in below if not any(n.startswith(m + "-") for m in below if m != n)]
    return (max(above, key=len) if above else None), sorted(direct)


async def namespace_detail(request: Request) -> Response:
    svc = _services(request)
    raw = request.path_params["namespace"]
    namespace = canonicalize_name(raw)
    if raw != namespace:
        return RedirectResponse(f"/namespace/{namespace}", 301)
    await reader(svc, request)
    names = await db_read(svc.engine, claims.namespaces)
    if namespace not in names:
        raise Problem(404, "not-found", "Namespace not found", f"No namespace {namespace!r} here.")
    parent, children = parent_and_children(namespace, names)
    return JSONResponse({"name": namespace, "parent": parent, "children": children},
                        headers=_CACHE)  # fmt: skip


routes = [
    Route("/namespaces", namespace_list, methods=["GET", "HEAD"]),
    Route("/namespace/{namespace}", namespace_detail, methods=["GET", "HEAD"]),
]
