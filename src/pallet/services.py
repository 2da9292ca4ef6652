"""The long-lived objects one server process shares between requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from pallet.config import Settings, parse_pins
from pallet.db.engine import make_engine
from pallet.db.leases import Heartbeat
from pallet.index.cache import Builds, PageCache, Rendered
from pallet.index.lookup import SerialLookup
from pallet.storage import BlobStore, open_store

if TYPE_CHECKING:
    from pallet.auth.oidc.keys import IssuerKeys
    from pallet.proxy.service import Proxy


@dataclass
class Services:
    settings: Settings
    engine: Engine
    store: BlobStore
    lookup: SerialLookup
    pages: PageCache[Rendered] = field(default_factory=PageCache)
    # The web UI's signed-out pages (pallet.web.render.Page), apart from the simple pages.
    web_pages: PageCache[Any] = field(default_factory=lambda: PageCache(2000))
    builds: Builds = field(default_factory=Builds)
    leases: Heartbeat = field(init=False)  # keeps this process's background work owned
    _issuer_keys: IssuerKeys | None = field(default=None, init=False, repr=False)
    _proxy: Proxy | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.leases = Heartbeat(self.engine)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        settings = settings.resolved()
        engine = make_engine(settings.database_url)
        return cls(settings, engine, open_store(settings.storage_url), SerialLookup(engine))

    def issuer_keys(self) -> IssuerKeys:
        """Trusted publishing's key cache, made on first use (PyJWT loads only then)."""
        if self._issuer_keys is None:
            from pallet.auth.oidc.keys import IssuerKeys

            self._issuer_keys = IssuerKeys(parse_pins(self.settings.oidc_jwks))
        return self._issuer_keys

    def proxy(self) -> Proxy | None:
        """The upstream proxy, made on first use; None when no upstream is configured."""
        if self._proxy is None and self.settings.upstreams:
            from pallet.proxy.service import Proxy

            self._proxy = Proxy(self)
        return self._proxy

    def close(self) -> None:
        if self._proxy is not None:
            self._proxy.close()
        self.leases.stop()
        self.lookup.close()
        self.engine.dispose()
