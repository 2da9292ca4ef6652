"""One process's proxy: its upstreams, routing policy, HTTP client, pages and downloads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pallet.core import routing
from pallet.db import claims
from pallet.db.session import read_session
from pallet.proxy.files import Downloads
from pallet.proxy.pages import Current, Pages
from pallet.proxy.upstreams import Client, parse_upstreams, policy

if TYPE_CHECKING:
    from pallet.services import Services


class Proxy:
    def __init__(self, svc: Services) -> None:
        settings = svc.settings
        self.upstreams = parse_upstreams(settings.upstreams)
        self.policy = policy(settings, self.upstreams)
        self.offline = settings.upstream_offline
        self.client = Client(settings)
        self.pages = Pages(svc.engine, self.client, self.upstreams, settings.upstream_page_ttl,
                           settings.upstream_timeout)  # fmt: skip
        self.downloads = Downloads(svc, self.client)
        self._engine = svc.engine

    def route(self, normalized: str) -> tuple[routing.Route, Current | None]:
        """Where a name this index has no project of comes from, and the stored page's state,
        in one read (claims are read on every request: a new claim holds at once)."""
        with read_session(self._engine) as s:
            covering = claims.covering(s, normalized)
            route = routing.route(
                normalized, exists_here=False, claims=covering, policy=self.policy
            )
            current = self.pages.current(s, normalized) if route.goes_upstream else None
        return route, current

    def close(self) -> None:
        self.client.close()
