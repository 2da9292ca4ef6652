"""The upstream indexes, as configured, and the one HTTP client that talks to them.

Every answer from an upstream is bounded: a page larger than ``upstream_max_page`` is refused
as it streams, every read has a timeout, and a redirect is followed only to the same scheme,
host and port (an upstream must not send Pallet, with its credentials, somewhere else).
Credentials come from the environment and are sent as a header; they are never part of a URL,
so no log line or error message can carry them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from pallet.config import Settings
from pallet.core import routing
from pallet.core.upstream_page import ACCEPT

MAX_REDIRECTS = 3
#: Bytes per read of an upstream's response. httpcore reads 64 KiB at a time; 512 KiB reads
#: made first downloads through the proxy about a fifth to a third faster on 2 cores (fewer
#: reads, and fewer handovers of the GIL between the receiving thread and the event loop).
#: 256 KiB was slower; 1 MiB no faster, and the server's memory grew more under 20 clients.
READ_SIZE = 512 * 1024
#: A response body with more than this still to come after its first piece is read from the
#: connection directly (``Client.body``); a smaller one goes through httpx, which keeps the
#: connection for the next request.
DIRECT_BODY = 2**20
#: Once twice the upstream timeout has passed, a body must have come at this average rate (bytes
#: per second) or better. Each read has its timeout, but an upstream that drips a byte now and
#: then would otherwise hold a download, and the clients waiting for it, for ever. Far below
#: any real link, and an average, so a pause in a fast download does not trip it.
MIN_BODY_RATE = 16 * 1024
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class UpstreamError(Exception):
    """The upstream could not be asked, or answered with something not to be trusted."""


@dataclass(frozen=True)
class Upstream:
    name: str
    url: str  # the simple index's root, ending in "/"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def page_url(self, normalized: str) -> str:
        return urljoin(self.url, f"{normalized}/")

    def headers_for(self, url: str) -> Mapping[str, str]:
        """The credentials go to the upstream's own origin only (files may live elsewhere)."""
        return self.headers if same_origin(self.url, url) else {}


def same_origin(a: str, b: str) -> bool:
    x, y = urlsplit(a), urlsplit(b)
    return (x.scheme, x.hostname, x.port) == (y.scheme, y.hostname, y.port)


def parse_upstreams(spec: str, env: Mapping[str, str] | None = None) -> list[Upstream]:
    """``[NAME=]URL`` items; unnamed ones are ``upstream1``, ``upstream2``... ValueError for a
    URL that is not http(s), carries credentials, or a name used twice."""
    env = os.environ if env is None else env
    found: list[Upstream] = []
    for i, item in enumerate(spec.replace(",", " ").split(), start=1):
        name, sep, url = item.partition("=")
        if not sep or "://" in name:
            name, url = f"upstream{i}", item
        name = name.lower()
        parts = urlsplit(url)
        if not _NAME.match(name):
            raise ValueError(f"an upstream name is lowercase letters, digits and _: {name!r}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"an upstream is an http(s) URL, not {url!r}")
        if parts.username or parts.password:
            raise ValueError(
                f"upstream {name}: credentials go in PALLET_UPSTREAM_{name.upper()}_TOKEN or "
                f"_USERNAME/_PASSWORD, not in the URL"
            )
        if any(u.name == name for u in found):
            raise ValueError(f"upstream {name!r} is named twice")
        found.append(Upstream(name, url.rstrip("/") + "/", _credentials(name, env)))
    return found


def _credentials(name: str, env: Mapping[str, str]) -> dict[str, str]:
    prefix = f"PALLET_UPSTREAM_{name.upper()}_"
    if token := env.get(prefix + "TOKEN"):
        return {"Authorization": f"Bearer {token}"}
    user, password = env.get(prefix + "USERNAME"), env.get(prefix + "PASSWORD")
    if user or password:
        return {"Authorization": httpx.BasicAuth(user or "", password or "")._auth_header}
    return {}


def policy(settings: Settings, upstreams: list[Upstream]) -> routing.Policy:
    def claims(spec: str) -> tuple[routing.Claim, ...]:
        return tuple(routing.Claim.parse(p) for p in spec.replace(",", " ").split())

    return routing.Policy(
        # Offline routes as online does (what is stored stays reachable); pages never fetch.
        upstreams=tuple(u.name for u in upstreams),
        allow=claims(settings.upstream_allow),
        deny=claims(settings.upstream_deny),
    )


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes
    url: str  # after redirects


class Client:
    """One pooled HTTP client for all upstreams of this process (thread-safe)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_page = settings.upstream_max_page
        # A whole page within twice the per-read timeout: an upstream that sends a byte now
        # and then never times out a read, and must not hold a fetch (and its lease) forever.
        self.page_deadline = 2 * settings.upstream_timeout
        self.clock = clock
        self.read_timeout = settings.upstream_timeout
        timeout = httpx.Timeout(
            settings.upstream_timeout, connect=min(10.0, settings.upstream_timeout)
        )
        # httpcore has no per-client read size: this is its HTTP/1.1 connection's own constant,
        # raised for the process (Pallet's other HTTP clients only get larger reads too).
        httpcore.HTTP11Connection.READ_NUM_BYTES = max(
            httpcore.HTTP11Connection.READ_NUM_BYTES, READ_SIZE
        )
        self._http = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,  # no proxy or .netrc from the server's environment
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            headers={"User-Agent": "pallet-proxy"},
        )

    def close(self) -> None:
        self._http.close()

    def page(self, upstream: Upstream, normalized: str, etag: str | None) -> Answer:
        """GET the project page (``If-None-Match`` when we hold a copy); the body bounded."""
        headers = {"Accept": ACCEPT, **upstream.headers}
        if etag:
            headers["If-None-Match"] = etag
        deadline = self.clock() + self.page_deadline
        with self.stream(upstream.name, upstream.page_url(normalized), headers) as r:
            body = bytearray()
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > self.max_page:
                    raise UpstreamError(f"{upstream.name}: a page over {self.max_page} bytes")
                if self.clock() > deadline:  # each read within the timeout, but a drip
                    raise UpstreamError(f"{upstream.name}: a page slower than "
                                        f"{self.page_deadline:.0f} s")  # fmt: skip
            return Answer(r.status_code, r.headers, bytes(body), str(r.url))

    def body(self, response: httpx.Response) -> Iterator[bytes]:
        """The bytes of a response from ``stream()`` as received (no decoding, no re-chunking),
        cut when they come slower than ``MIN_BODY_RATE``."""
        started, received = self.clock(), 0
        for chunk in self._received(response):
            received += len(chunk)
            elapsed = self.clock() - started
            if elapsed > self.page_deadline and received < MIN_BODY_RATE * elapsed:
                raise UpstreamError(f"a body slower than {MIN_BODY_RATE // 1024} KiB/s")
            yield chunk

    def _received(self, response: httpx.Response) -> Iterator[bytes]:
        """The body's pieces as they come off the connection.

        On their way up through h11 and httpcore, received bytes are copied four times (into
        h11's buffer, twice out of it, into ``bytes``), about a fifth of the proxy's CPU on a
        first download. So a large HTTP/1.1 body of known length is read from the connection
        itself, through httpcore's ``network_stream`` extension, once its first piece has come
        through httpx: that piece is everything h11 buffered with the headers. h11 then never
        sees the end of the body, so httpcore closes the connection instead of pooling it.
        Other bodies (chunked, small) go through httpx, and a short one keeps its connection.
        """
        stream = response.extensions.get("network_stream")
        length = response.headers.get("content-length", "")
        raw = response.iter_raw()
        if (
            stream is None
            or response.http_version != "HTTP/1.1"
            or "transfer-encoding" in response.headers
            or not length.isdigit()
        ):
            yield from raw
            return
        remaining = int(length)
        for first in raw:
            remaining -= len(first)
            yield first
            break
        if remaining <= DIRECT_BODY:
            yield from raw
            return
        try:
            while remaining > 0:
                data = stream.read(min(READ_SIZE, remaining), timeout=self.read_timeout)
                if not data:  # what h11 would say: stream() names the upstream
                    raise httpx.RemoteProtocolError(f"closed {remaining} bytes early")
                remaining -= len(data)
                yield data
        except httpcore.TimeoutException:
            raise httpx.ReadTimeout("no bytes within the timeout") from None
        except httpcore.NetworkError:
            raise httpx.ReadError("the connection failed") from None

    @contextmanager
    def stream(self, label: str, url: str, headers: Mapping[str, str]) -> Iterator[httpx.Response]:
        """A streamed GET, following redirects within ``url``'s origin only (they keep the
        headers, credentials included); every failure an UpstreamError naming ``label``."""
        origin = url
        try:
            for _ in range(MAX_REDIRECTS + 1):
                request = self._http.build_request("GET", url, headers=headers)
                response = self._http.send(request, stream=True)
                if response.has_redirect_location:
                    target = urljoin(url, response.headers.get("location", ""))
                    response.close()
                    if not same_origin(origin, target):
                        raise UpstreamError(f"{label}: a redirect to another host")
                    url = target
                    continue
                try:
                    yield response
                finally:
                    response.close()
                return
            raise UpstreamError(f"{label}: more than {MAX_REDIRECTS} redirects")
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{label}: {type(exc).__name__}") from None
