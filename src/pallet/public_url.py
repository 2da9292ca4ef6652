"""Where the index says it lives: every absolute URL Pallet hands out (Upload 2.0 links, signed
upload URLs, the discovery document, JSON API file URLs) starts from ``base_url``.

A Host header is the client's word, and a URL built from it can be poisoned (``Host:
evil.example`` would send the next client's bytes, or its token, elsewhere). So either
``--base-url`` fixes the base, or the Host must be one of ``--allowed-hosts``, checked on every
request before any handler runs. ``X-Forwarded-*`` is honoured only from the proxies named by
``--forwarded-allow-ips`` (uvicorn applies it before the request reaches this code).
"""

from __future__ import annotations

import json
import socket

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from pallet.config import Settings
from pallet.core.problems import PROBLEM_MEDIA_TYPE, Problem

_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def allowed_hosts(settings: Settings) -> tuple[str, ...]:
    """``--allowed-hosts`` (comma-separated; ``*.example.com`` matches subdomains, ``*`` any);
    by default the loopback names and the address and name this server is bound to."""
    if settings.allowed_hosts:
        return tuple(h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip())
    names = list(_LOOPBACK)
    if settings.host not in ("0.0.0.0", "::", ""):  # noqa: S104 - a comparison, not a bind
        names.append(settings.host.lower())
    else:
        names.append(socket.gethostname().lower())
    return tuple(names)


def host_name(host_header: str) -> str:
    """``example.com:8000`` → ``example.com``; ``[::1]:8000`` → ``::1``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        if pattern == "*" or host == pattern:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


def base_url(request: Request) -> str:
    """Scheme and authority, no trailing slash: ``--base-url``, else the checked request's."""
    configured = request.app.state.services.settings.base_url
    if configured:
        return configured.rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}"


def redirect(request: Request, path: str) -> RedirectResponse:
    """A redirect to another path of this index, relative (RFC 9110 allows it), so no Host,
    checked or not, ever lands in a cached Location."""
    query = request.url.query
    return RedirectResponse(path + (f"?{query}" if query else ""), 301)


class HostCheck:
    """Refuses a request whose Host is not allowed, with a 400 problem, before any handler."""

    def __init__(self, app: ASGIApp, patterns: tuple[str, ...]) -> None:
        self.app, self.patterns = app, patterns

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = Headers(scope=scope).get("host", "")
            if not is_allowed(host_name(host), self.patterns):
                await _refuse(send, host)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, host: str) -> None:
    problem = Problem(
        400,
        "host-not-allowed",
        "Host not allowed",
        f"This index does not answer to Host {host[:100]!r}. Set --base-url (PALLET_BASE_URL) "
        "or add the name to --allowed-hosts (PALLET_ALLOWED_HOSTS).",
    )
    body = json.dumps(problem.to_dict()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
