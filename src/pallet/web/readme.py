"""Long descriptions rendered as PyPI renders them: ``readme_renderer`` (the library PyPI uses)
picks Markdown (GFM), reStructuredText or plain text from ``Description-Content-Type`` and
sanitises the HTML (no scripts, no event handlers, no ``javascript:`` links, raw HTML cleaned).

Rendering is the slow part of a project page, so the result is kept by what was rendered (a
digest of the text and its content type), not by release id: ids can be reused (SQLite hands a
deleted last row's id to the next one), text cannot lie about itself."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from email.message import Message

from markupsafe import Markup, escape

CACHE_SIZE = 256


def _content_type(value: str | None) -> tuple[str, dict[str, str]]:
    message = Message()
    message["Content-Type"] = value or "text/x-rst"
    params = dict(message.get_params() or [])
    return message.get_content_type(), params


def render(description: str | None, content_type: str | None) -> Markup:
    """Sanitised HTML for a description (empty for none). A description that does not render
    (invalid reST) is shown as preformatted text, as PyPI falls back."""
    if not description or not description.strip() or description.strip() == "UNKNOWN":
        return Markup("")
    kind, params = _content_type(content_type)
    rendered: str | None
    if kind == "text/markdown":
        from readme_renderer.markdown import render as markdown

        rendered = markdown(description, variant=params.get("variant", "GFM"))
    elif kind == "text/plain":
        from readme_renderer.txt import render as plain

        rendered = plain(description)
    else:
        from readme_renderer.rst import render as rst

        rendered = rst(description)
    if rendered is None:
        return Markup("<pre>") + escape(description) + Markup("</pre>")
    return Markup(rendered)  # noqa: S704 - readme_renderer's output is sanitised (nh3)


class RenderedReadmes:
    """Rendered descriptions by digest (an LRU; thread-safe)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._items: OrderedDict[bytes, Markup] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, description: str | None, content_type: str | None) -> Markup:
        key = hashlib.sha256(f"{content_type}\n{description}".encode(errors="replace")).digest()
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        html = render(description, content_type)
        with self._lock:
            self._items[key] = html
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return html
