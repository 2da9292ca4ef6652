"""The route *template* a request matched (``/simple/{project}/``), for metrics labels and logs.

Raw paths would make one time series per project and session id; templates keep the label set
as small as the route table. A request that matched no route (a 404 outside every route, a Host
check refusal before routing, a path under the Upload 2.0 mount that no inner route took) is
``UNMATCHED``.

Starlette leaves the matched route object in ``scope["route"]`` (the innermost one under a
mount). Its full template is the mount prefixes plus its own path, found once per route object
by walking the application's route table and then remembered.
"""

from __future__ import annotations

import weakref
from typing import Any

from starlette.routing import BaseRoute, Mount, Route

UNMATCHED = "unmatched"

#: id(route) -> (a weak reference to that route, its full template). The reference tells a live
#: route from a dead one whose id was reused (tests build many apps); a weak one keeps no app alive.
_known: dict[int, tuple[weakref.ref[Any], str]] = {}


def _walk(routes: list[BaseRoute], prefix: str) -> None:
    for route in routes:
        if isinstance(route, Mount):
            # Reached only when nothing inside the mount matched.
            _known[id(route)] = (weakref.ref(route), UNMATCHED)
            _walk(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            _known[id(route)] = (weakref.ref(route), prefix + route.path)


def route_template(scope: Any) -> str:
    """The template of the route that handled ``scope`` (read after the app has run)."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    entry = _known.get(id(route))
    if entry is None or entry[0]() is not route:
        app = scope.get("app")
        routes = getattr(app, "routes", None)
        if routes is not None:
            _walk(list(routes), "")
        entry = _known.get(id(route))
        if entry is None or entry[0]() is not route:
            # A route outside the app's table (not expected): its own path, else unmatched.
            path = getattr(route, "path", None)
            entry = (weakref.ref(route), path if isinstance(path, str) and path else UNMATCHED)
            _known[id(route)] = entry
    return entry[1]
