"""How the web UI's pages are made: the Jinja2 templates and their filters, rendered READMEs,
the shared cache of signed-out pages, and the security headers every page carries."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import UTC, datetime

from jinja2 import Environment, PackageLoader, select_autoescape

from pallet.web.readme import RenderedReadmes

#: What a page may load: its own stylesheet and script, images from anywhere over HTTPS
#: (READMEs show badges), nothing else; no page may be framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https: data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
PUBLIC_CACHE = "max-age=0, must-revalidate"
PRIVATE_CACHE = "private, no-cache"

templates = Environment(
    loader=PackageLoader("pallet.web", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
readmes = RenderedReadmes()


def _iso(ts: datetime) -> str:
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).isoformat()


def _ago(ts: datetime) -> str:
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).strftime("%Y-%m-%d %H:%M UTC")


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)  # pragma: no cover


def _via(uploaded_via: str) -> str:
    """``upload-2.0:vnd-pallet-presigned-put`` → ``Upload 2.0 (vnd-pallet-presigned-put)``."""
    protocol, _, mechanism = uploaded_via.partition(":")
    names = {"upload-2.0": "Upload 2.0", "legacy": "legacy", "direct": "uv --direct"}
    name = names.get(protocol, protocol)
    return f"{name} ({mechanism})" if mechanism else name


templates.globals.update(iso=_iso, ago=_ago, size=_size, via=_via)


class Pages:
    """Signed-out pages by path, valid while their serial is current (an LRU)."""

    def __init__(self, size: int = 2000) -> None:
        self._items: OrderedDict[str, tuple[int, bytes, str]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: str, serial: int) -> tuple[bytes, str] | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] != serial:
                return None
            self._items.move_to_end(key)
            return item[1], item[2]

    def put(self, key: str, serial: int, body: bytes, etag: str) -> None:
        with self._lock:
            self._items[key] = (serial, body, etag)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


pages = Pages()
