"""HTTP for the client: one pooled httpx client, retries where they are safe, one-line errors.

Retry policy (exponential backoff with equal jitter, ``Retry-After`` honoured):

- ``429`` and ``503`` mean the server did not do the work: every request is retried;
- transport errors, ``500``, ``502`` and ``504`` may hide work that was done: only idempotent
  requests (GET, DELETE, PUT of the same bytes, a replaceable ``http-post-bytes`` POST, extend)
  are retried.

No URL with a query string is ever put in a message: pre-signed URLs carry their signature there.
"""

from __future__ import annotations

import html
import json
import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from pallet import __version__
from pallet.core.upload2 import MEDIA_TYPE

USER_AGENT = f"pallet/{__version__}"
_HTML_NOISE = re.compile(r"<(head|style|script)\b.*?</\1>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]+>")
ALWAYS_RETRY = frozenset({429, 503})
RETRY_IF_IDEMPOTENT = frozenset({500, 502, 504})


class ClientError(Exception):
    """A failure worth one line to the user; ``status``/``problem`` when the server answered."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problem: dict[str, Any] | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem or {}
        self.response = response

    @property
    def slug(self) -> str:
        return str(self.problem.get("type", "")).rsplit(":", 1)[-1]


def redact(url: str) -> str:
    """The URL without its query string (where signatures and tokens live)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]  # no userinfo either
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def describe_error(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    """``title: detail (source: message, ...)`` from an RFC 9457 body, else the start of the text."""
    problem: dict[str, Any] = {}
    try:
        body = response.json()
        if isinstance(body, dict):
            problem = body
    except (ValueError, UnicodeDecodeError):
        pass
    if problem.get("title") or problem.get("detail"):
        text = ": ".join(str(problem[k]) for k in ("title", "detail") if problem.get(k))
        errors = [
            f"{e.get('source')}: {e.get('message')}"
            for e in problem.get("errors") or []
            if isinstance(e, dict)
        ]
        if errors:
            text += " (" + "; ".join(errors[:5]) + (", ..." if len(errors) > 5 else "") + ")"
        return text, problem
    text = response.text if response.content else ""
    if "html" in response.headers.get("content-type", ""):
        text = html.unescape(_HTML_TAG.sub(" ", _HTML_NOISE.sub(" ", text)))
    text = " ".join(text.split())[:300]
    return text or response.reason_phrase or "no body", problem


def v2_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of an Upload 2.0 answer; anything else means the URL does not speak it."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("links"), dict):
        raise ClientError(
            f"{response.status_code} from {redact(str(response.url))} is not an Upload 2.0 answer",
            status=response.status_code,
            response=response,
        )
    return body


@dataclass
class RetryPolicy:
    """Eight attempts with "equal jitter" backoff: each wait is at least half its exponential
    step, so the retries span at least ~30 s (an index or store restarting) whatever the dice
    say, while clients that failed together still spread out."""

    attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), self.max_delay)
            except ValueError:
                pass
        step = min(self.max_delay, self.base_delay * (1 << attempt))
        return step / 2 + random.uniform(0, step / 2)  # noqa: S311


Body = Callable[[], Iterable[bytes]] | bytes | None


class Transport:
    def __init__(
        self,
        auth: httpx.Auth | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 120.0,
        verify: bool | str = True,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.auth = auth
        self.retry = retry or RetryPolicy()
        self.on_retry = on_retry
        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=15.0),
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            follow_redirects=False,
            verify=verify,
            trust_env=True,
        )

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool,
        body: Body = None,
        headers: dict[str, str] | None = None,
        authenticate: bool = True,
        ok: Callable[[httpx.Response], bool] = lambda r: r.is_success,
    ) -> httpx.Response:
        """Send, retrying per the policy; return a response ``ok`` accepts or raise ClientError.

        ``body`` may be a callable returning a fresh iterable of chunks, so a file can be
        streamed again on a retry without ever being held in memory."""
        last: ClientError | None = None
        for attempt in range(self.retry.attempts):
            content = body() if callable(body) else body
            response: httpx.Response | None = None
            try:
                response = self.http.request(
                    method,
                    url,
                    content=content,
                    headers=headers,
                    auth=self.auth if authenticate else None,
                )
            except httpx.TransportError as exc:
                last = ClientError(f"{method} {redact(url)}: {type(exc).__name__}: {exc}")
                if not idempotent:
                    raise last from None
            else:
                if ok(response):
                    return response
                message, problem = describe_error(response)
                last = ClientError(
                    f"{response.status_code} {message}",
                    status=response.status_code,
                    problem=problem,
                    response=response,
                )
                status = response.status_code
                retryable = status in ALWAYS_RETRY or (idempotent and status in RETRY_IF_IDEMPOTENT)
                if not retryable:
                    raise last
            if attempt + 1 < self.retry.attempts:
                wait = self.retry.delay(attempt, response)
                if self.on_retry:
                    self.on_retry(f"{method} {redact(url)}: {last}; retrying in {wait:.1f}s")
                time.sleep(wait)
        assert last is not None
        raise last


class Api:
    """The PEP 694 JSON calls: media type, ``meta`` and the retry class of each step."""

    def __init__(self, transport: Transport) -> None:
        self.t = transport

    def _send(
        self, method: str, url: str, payload: dict[str, Any] | None, **kw: Any
    ) -> httpx.Response:
        headers = {"Accept": MEDIA_TYPE}
        body = None
        if payload is not None:
            headers["Content-Type"] = MEDIA_TYPE
            body = json.dumps({"meta": {"api-version": "2.0"}, **payload}).encode()
        return self.t.request(method, url, body=body, headers=headers, **kw)

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self._send("GET", url, None, idempotent=True, **kw)

    def post(
        self, url: str, payload: dict[str, Any], *, idempotent: bool = False, **kw: Any
    ) -> httpx.Response:
        return self._send("POST", url, payload, idempotent=idempotent, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return self._send("DELETE", url, None, idempotent=True, **kw)
