"""PEP 691 content negotiation with q-values. Nothing acceptable -> 406 (tested); a missing
Accept header means ``*/*``, which gets HTML (what pip expected before PEP 691).

PEP 691's optional ``?format=`` URL parameter is supported too: its value is exactly one media
type (no wildcards, lists or q-values), and when present it decides the representation instead
of ``Accept``. A value we do not serve is a 406, the same as an unacceptable ``Accept``."""

from __future__ import annotations

from functools import lru_cache

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"

# Server preference at equal q: plain text/html first, so wildcard clients (old pip, curl,
# browsers) get the format every installer understands.
_OFFERS = (TEXT_HTML, HTML, JSON)
_ALIASES = {
    "application/vnd.pypi.simple.latest+json": JSON,
    "application/vnd.pypi.simple.latest+html": HTML,
}


FORMAT_PARAM = "format"
# What ``?format=`` may name: one of our media types or a ``latest`` alias, nothing else.
_FORMATS = {offer: offer for offer in _OFFERS} | _ALIASES


class Unsupported(ValueError):
    """``?format=`` names nothing this index serves; the message says why."""


def from_format(values: list[str]) -> str:
    """The media type a ``?format=`` parameter selects (``values``: every occurrence of it).

    Raises ``Unsupported`` for a value that is not exactly one of our media types, and for
    several different values."""
    wanted = {v.strip().lower() for v in values}
    if len(wanted) != 1:
        raise Unsupported("Give ?format= once, with a single media type.")
    (value,) = wanted
    media = _FORMATS.get(value)
    if media is None:
        shown = value if len(value) <= 100 else value[:100] + "…"
        raise Unsupported(f"?format={shown} is not a format this index serves.")
    return media


def accepted(accept: str) -> list[tuple[str, float]]:
    """``Accept``'s media ranges (lowercased) with their ``q``; those refused (``q=0``, or a
    ``q`` that is not a number) are left out."""
    out = []
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for p in params:
            key, _, value = p.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            out.append((media.lower(), q))
    return out


@lru_cache(maxsize=256)
def choose(accept: str | None) -> str | None:
    """The media type to serve, or None when the client accepts none of ours."""
    if not accept or not accept.strip():
        return TEXT_HTML
    best: tuple[float, int, str] | None = None
    for media, q in accepted(accept):
        media = _ALIASES.get(media, media)
        for rank, offer in enumerate(_OFFERS):
            if _matches(media, offer):
                # Explicit types beat wildcards at equal q; then our preference order.
                specificity = 0 if "*" in media else 1
                candidate = (q, specificity * 10 - rank, offer)
                if best is None or candidate[:2] > best[:2]:
                    best = candidate
    return best[2] if best else None


def _matches(media: str, offer: str) -> bool:
    if media in ("*/*", offer):
        return True
    major = offer.split("/")[0]
    return media == f"{major}/*"


_CODING_ALIASES = {"x-gzip": "gzip"}  # RFC 9110 §8.4.1.3


@lru_cache(maxsize=256)
def codings(accept_encoding: str | None, offered: tuple[str, ...]) -> tuple[str, ...]:
    """The content codings of ``offered`` (ours, best first) that the client takes over no
    coding at all, best first, per RFC 9110 §12.5.3: q-values, ``identity``, ``*`` (any coding
    not named), ``q=0`` for "not this one". No header (or an empty one) means identity only,
    as clients that decode nothing (curl, scripts) send none.

    When identity is refused too and nothing here fits, the caller still sends identity: the
    RFC lets a server do so, and an unreadable body helps no one more than a 406 would."""
    if not accept_encoding or not accept_encoding.strip():
        return ()
    named: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *params = (p.strip() for p in item.split(";"))
        coding = coding.lower()
        if not coding:
            continue
        coding = _CODING_ALIASES.get(coding, coding)
        q = 1.0
        for p in params:
            key, _, value = p.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        named[coding] = max(q, named.get(coding, q))
    star = named.get("*")
    identity = named.get("identity", 1.0 if star is None else star)
    ranked = []
    for rank, coding in enumerate(offered):
        q = named.get(coding, star if star is not None else 0.0)
        if q > 0 and q >= identity:  # at equal q a compressed body is the better answer
            ranked.append((-q, rank, coding))
    return tuple(coding for *_, coding in sorted(ranked))
