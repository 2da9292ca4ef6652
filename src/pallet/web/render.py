"""How the web UI's pages are made: the Jinja2 templates and their filters, rendered READMEs,
signed-out pages as they are cached and sent, and the security headers every page carries."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from jinja2 import Environment, PackageLoader, select_autoescape

from pallet.index.cache import compressed
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


@dataclass(frozen=True)
class Page:
    """A signed-out page as sent: its bytes, their ETag, and the same bytes compressed."""

    serial: int
    body: bytes
    etag: str
    encoded: dict[str, bytes] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, serial: int, text: str) -> Page:
        """Encode, hash and compress once per serial: call it in the worker thread."""
        body = text.encode()
        etag = f'"w{serial}-{hashlib.sha256(body).hexdigest()[:16]}"'
        return cls(serial, body, etag, compressed(body))
