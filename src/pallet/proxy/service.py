"""One process's proxy: its upstreams, routing policy, HTTP client, pages and downloads."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session

from pallet.core import routing
from pallet.db import claims
from pallet.proxy.files import Downloads
from pallet.proxy.pages import Current, Pages
from pallet.proxy.upstreams import Client, parse_upstreams, policy


class Proxy:
    """Made by ``Services.proxy`` (it is handed the services, not imported by them)."""

    def __init__(self, svc: Any) -> None:
        settings = svc.settings
        self.upstreams = parse_upstreams(settings.upstreams)
        self.policy = policy(settings, self.upstreams)
        self.offline = settings.upstream_offline
        self.client = Client(settings)
        self.pages = Pages(svc.engine, self.client, self.upstreams, settings.upstream_page_ttl,
                           settings.upstream_timeout, settings.upstream_retry_after)  # fmt: skip
        self.downloads = Downloads(svc, self.client)
        # Until when (monotonic) each stored page is fresh, as this process last saw it: lets
        # the read path's fast answer skip the freshness read. Older than the truth is safe
        # (the slow path revalidates), never newer.
        self._fresh_until: dict[str, float] = {}

    def fresh(self, normalized: str) -> bool:
        return self.offline or self._fresh_until.get(normalized, 0.0) > time.monotonic()

    def saw_fresh(self, normalized: str, seconds: float) -> None:
        if seconds > 0:
            if len(self._fresh_until) > 100_000:
                self._fresh_until.clear()
            self._fresh_until[normalized] = time.monotonic() + seconds

    def route(self, s: Session, normalized: str) -> tuple[routing.Route, Current | None]:
        """Where a name this index has no project of comes from, and the stored page's state,
        in one short read (claims are read on every request: a new claim holds at once). Run
        it with ``pallet.db.session.read``: inline on SQLite, as the read path's serial is."""
        covering = claims.covering(s, normalized)
        route = routing.route(normalized, exists_here=False, claims=covering, policy=self.policy)
        current = self.pages.current(s, normalized) if route.goes_upstream else None
        return route, current

    def close(self) -> None:
        self.client.close()
