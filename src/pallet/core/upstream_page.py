"""An upstream index's project page, read: PEP 691 JSON, or PEP 503 HTML when that is all the
upstream speaks. Pure, and distrustful: the page comes from another server.

What is kept of each file is what Pallet passes on (hashes, ``requires-python``, ``yanked``,
``upload-time``, ``size``, PEP 658 ``core-metadata``) and the URL to fetch it from, made
absolute against the page's own URL. A file with no sha256 is left out and counted: Pallet
stores files by sha256 and serves none it could not check.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

JSON = "application/vnd.pypi.simple.v1+json"
HTML_TYPES = ("application/vnd.pypi.simple.v1+html", "text/html")
#: Sent upstream: JSON first, HTML taken when that is all there is.
ACCEPT = f"{JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
MAX_FILES = 50_000
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]{0,254}$")


class PageError(ValueError):
    """The upstream's page is not a project page we can trust."""


@dataclass(frozen=True)
class UpstreamFile:
    filename: str
    url: str  # absolute
    sha256: str
    size: int | None = None
    upload_time: datetime | None = None
    requires_python: str | None = None
    yanked: str | None = None  # None = not yanked; "" = yanked without a reason
    core_metadata_sha256: str | None = None


@dataclass(frozen=True)
class UpstreamProject:
    name: str
    files: list[UpstreamFile] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    serial: int | None = None  # the upstream's ``_last-serial``, when it says
    unhashed: int = 0  # files left out for want of a sha256

    def file(self, sha256: str, filename: str) -> UpstreamFile | None:
        return next((f for f in self.files if f.sha256 == sha256 and f.filename == filename), None)


def parse(body: bytes, content_type: str, page_url: str, normalized: str) -> UpstreamProject:
    media = content_type.split(";")[0].strip().lower()
    if media == JSON:
        return _parse_json(body, page_url, normalized)
    if media in HTML_TYPES:
        return _parse_html(body, page_url, normalized)
    raise PageError(f"not a simple-API page: {media or 'no Content-Type'}")


def _absolute(page_url: str, href: str) -> str:
    url = urljoin(page_url, href)
    if urlsplit(url).scheme not in ("http", "https"):
        raise PageError(f"a file URL that is not http(s): {href[:200]!r}")
    return url


def _filename(value: object) -> str:
    if not isinstance(value, str) or not _FILENAME.match(value) or ".." in value:
        raise PageError(f"not a distribution filename: {str(value)[:200]!r}")
    return value


def _sha256(hashes: object) -> str | None:
    value = hashes.get("sha256") if isinstance(hashes, dict) else None
    if isinstance(value, str) and _SHA256.match(value.lower()):
        return value.lower()
    return None


def _yanked(value: object) -> str | None:
    if value is False or value is None:
        return None
    return value if isinstance(value, str) else ""


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _parse_json(body: bytes, page_url: str, normalized: str) -> UpstreamProject:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise PageError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        raise PageError("a JSON page without a files list")
    meta = doc["meta"] if isinstance(doc.get("meta"), dict) else {}
    if not str(meta.get("api-version", "")).startswith("1."):
        raise PageError(f"an unknown API version: {str(meta.get('api-version'))[:20]!r}")
    if len(doc["files"]) > MAX_FILES:
        raise PageError(f"more than {MAX_FILES} files")
    files, unhashed = [], 0
    for entry in doc["files"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise PageError("a file entry without a URL")
        sha256 = _sha256(entry.get("hashes"))
        if sha256 is None:
            unhashed += 1
            continue
        size = entry.get("size")
        requires = entry.get("requires-python")
        metadata = entry.get("core-metadata", entry.get("dist-info-metadata"))
        files.append(
            UpstreamFile(
                filename=_filename(entry.get("filename")),
                url=_absolute(page_url, entry["url"]),
                sha256=sha256,
                size=size if isinstance(size, int) and size >= 0 else None,
                upload_time=_time(entry.get("upload-time")),
                requires_python=requires if isinstance(requires, str) else None,
                yanked=_yanked(entry.get("yanked")),
                core_metadata_sha256=_sha256(metadata),
            )
        )
    versions = doc.get("versions")
    serial = meta.get("_last-serial")
    return UpstreamProject(
        name=normalized,
        files=files,
        versions=[v for v in versions if isinstance(v, str)] if isinstance(versions, list) else [],
        serial=serial if isinstance(serial, int) and not isinstance(serial, bool) else None,
        unhashed=unhashed,
    )


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.anchors.append((self._open, "".join(self._text).strip()))
            self._open = None
            if len(self.anchors) > MAX_FILES:
                raise PageError(f"more than {MAX_FILES} files")


def _metadata_attr(value: str | None) -> str | None:
    if value and value.startswith("sha256="):
        digest = value.removeprefix("sha256=").lower()
        return digest if _SHA256.match(digest) else None
    return None


def _parse_html(body: bytes, page_url: str, normalized: str) -> UpstreamProject:
    links = _Links()
    links.feed(body.decode("utf-8", errors="replace"))
    links.close()
    files, unhashed = [], 0
    for attrs, text in links.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, fragment = urldefrag(href)
        algo, _, digest = fragment.partition("=")
        if algo != "sha256" or not _SHA256.match(digest.lower()):
            unhashed += 1
            continue
        yanked = attrs.get("data-yanked")
        files.append(
            UpstreamFile(
                filename=_filename(text or url.rsplit("/", 1)[-1]),
                url=_absolute(page_url, url),
                sha256=digest.lower(),
                requires_python=attrs.get("data-requires-python"),
                yanked=None if "data-yanked" not in attrs else (yanked or ""),
                core_metadata_sha256=_metadata_attr(
                    attrs.get("data-core-metadata") or attrs.get("data-dist-info-metadata")
                ),
            )
        )
    return UpstreamProject(name=normalized, files=files, unhashed=unhashed)
