"""The read path's hot case without the framework in between.

Nearly every request an index gets is a ``GET`` of ``/simple/`` or ``/simple/<project>/`` whose
page is already in the page cache: one serial check, one negotiation, bytes out. Through the
full app that request also crosses Starlette's error, metrics, body-timeout, Host-check and
outage middlewares, the exception middleware, the router (a regex per route until one matches)
and the request/response wrappers, which together cost more than the answer itself.

``FastPages`` sits in front of the app and answers exactly that case itself, with the same
bytes and headers (``routes.answer`` prepares both paths' answers), the same Host check, the
same request metrics and the same access-log route. Anything else goes to the app untouched,
before a byte is sent: another path or method, a query string (``?format=``), a page not cached
at the current serial (the app builds it), an unacceptable ``Accept`` (the app's 406), a Host
the app refuses, any error while checking the serial (the app maps outages to 503s), a private
index (every read is authenticated there) and the fault-injection test hook.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pallet.core import routing
from pallet.index import negotiate, proxied
from pallet.index import routes as index_routes
from pallet.public_url import allowed_hosts, host_name, is_allowed
from pallet.services import Services

_PREFIX = "/simple/"
_METHODS = ("GET", "HEAD")
#: Distinct Host values whose verdict is remembered (a client can send any number of them).
_HOSTS_KEPT = 256


def _route(path: str) -> Route:
    for route in index_routes.routes:
        if isinstance(route, Route) and route.path == path:
            return route
    raise LookupError(path)  # pragma: no cover - the route table names both


class FastPages:
    """ASGI: cached simple pages straight from the page cache; the rest to ``app``."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        # prometheus_client reads its multiprocess directory when first imported: by now the
        # server has set it (the app's middleware imported telemetry already).
        from pallet import telemetry  # noqa: PLC0415

        self.app = app
        self.services = services
        settings = services.settings
        self.enabled = not settings.private and not settings.inject_503
        self._patterns = None if settings.base_url else allowed_hosts(settings)
        self._hosts: dict[bytes, bool] = {}
        self._list_route = _route("/simple/")
        self._page_route = _route("/simple/{project}/")
        self._in_flight = telemetry.IN_FLIGHT
        self._observe = telemetry.observe

    def __getattr__(self, name: str) -> Any:
        """The wrapped app's attributes (``state``, ``routes`` ...), as if it were the app."""
        return getattr(self.app, name)

    def _host_ok(self, host: bytes | None) -> bool:
        if self._patterns is None:
            return True
        if host is None:
            return False
        verdict = self._hosts.get(host)
        if verdict is None:
            verdict = is_allowed(host_name(host.decode("latin-1")), self._patterns)
            if len(self._hosts) >= _HOSTS_KEPT:
                self._hosts.clear()
            self._hosts[host] = verdict
        return verdict

    def _upstream_version(self, key: str) -> int:
        """The proxied page's stored version, or -1 when routing would no longer send ``key``
        upstream (a project or a claim has it now) or there is none."""
        svc = self.services
        state = svc.lookup.upstream_page(key)
        if state is None or state[1] or state[2]:
            return -1
        proxy = svc.proxy()
        assert proxy is not None
        allowed = routing.route(key, exists_here=False, claims=(), policy=proxy.policy)
        return state[0] if allowed.goes_upstream else -1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.enabled
            or scope["method"] not in _METHODS
            or scope.get("query_string")
        ):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == _PREFIX:
            key, route = "/", self._list_route
        elif (
            path.startswith(_PREFIX)
            and path.endswith("/")
            and path.find("/", len(_PREFIX)) == len(path) - 1
            and len(path) > len(_PREFIX) + 1
        ):
            # The page cache is keyed by normalized name: a name found there needs no redirect.
            key, route = path[len(_PREFIX) : -1], self._page_route
        else:
            await self.app(scope, receive, send)
            return
        svc = self.services
        upstream = False
        if not svc.pages.holds(key):
            # An upstream's page this process has cached, and saw fresh: answered here too
            # when it still is (routing rechecked on the database, in the same query).
            proxy = svc.proxy() if key != "/" and not svc.lookup.batched else None
            if proxy is None or not proxy.fresh(key) or not svc.pages.holds(proxied.KEY + key):
                await self.app(scope, receive, send)
                return
            upstream = True
        accept = accept_encoding = if_none_match = host = None
        for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
            if name == b"accept":
                accept = value if accept is None else accept
            elif name == b"accept-encoding":
                accept_encoding = value if accept_encoding is None else accept_encoding
            elif name == b"if-none-match":
                if_none_match = value if if_none_match is None else if_none_match
            elif name == b"host":
                host = value if host is None else host
        media = negotiate.choose(accept.decode("latin-1") if accept is not None else None)
        if media is None or not self._host_ok(host):
            await self.app(scope, receive, send)  # the app's 406 or 400, counted there
            return
        started = time.perf_counter()
        try:
            if upstream:
                serial = self._upstream_version(key)
            elif key == "/":
                serial = await svc.lookup.index_serial_async()
            else:
                row = await svc.lookup.project_async(key)
                serial = -1 if row is None else row[2]
        except Exception:  # noqa: BLE001 - the app checks again and answers the outage
            serial = -1
        entry = (
            svc.pages.get(proxied.KEY + key if upstream else key, serial) if serial >= 0 else None
        )
        if entry is None:
            await self.app(scope, receive, send)
            return
        ready = index_routes.answer(
            entry,
            media,
            True,
            accept_encoding.decode("latin-1") if accept_encoding is not None else None,
            if_none_match.decode("latin-1") if if_none_match is not None else None,
            False,
        )
        # What the router would have left for the access log and the metrics' route label.
        scope["route"] = route
        scope["app"] = self.app
        if key != "/":
            scope["path_params"] = {"project": key}
        status = 500
        self._in_flight.inc()
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": ready.status,
                    "headers": list(ready.headers),
                }
            )
            status = ready.status
            # Counted before the body goes out, as the app's metrics do (telemetry).
            self._observe(route.path, scope["method"], status, time.perf_counter() - started)
            status = 0
            await send({"type": "http.response.body", "body": ready.body})
        finally:
            self._in_flight.dec()
            if status:  # not counted yet: the start line failed
                self._observe(route.path, scope["method"], status, time.perf_counter() - started)
