"""Issuers' signing keys: discovered over HTTPS, cached, or pinned from a file.

Keys come from the issuer's ``/.well-known/openid-configuration`` and the ``jwks_uri`` it names,
and are kept for an hour: an issuer rotates by publishing the new key beside the old one first,
so a token signed with an unknown ``kid`` triggers one early refetch (at most one a minute per
issuer, so tokens with made-up ``kid`` values cannot make the index hammer an issuer). Only
issuers some trusted publisher names are ever fetched: the ``iss`` of an arbitrary token is
never a URL the index will visit. An air-gapped site pins an issuer's JWKS from a file
(``--oidc-jwks ISSUER=FILE``) and nothing is fetched for it.

Plain ``http`` is refused except for loopback hosts, where tests and local stand-ins live.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from pallet.auth.oidc.errors import refused
from pallet.core.problems import Problem

MAX_DOCUMENT = 256 * 1024  #: bytes of a discovery document or JWKS
FETCH_TIMEOUT = 5.0
KEYS_TTL = 3600.0
MIN_REFETCH = 60.0


def issuer_unavailable(issuer: str, why: str) -> Problem:
    return refused(
        "issuer-unavailable",
        f"the signing keys of {issuer} could not be fetched ({why}); try again later",
        503,
        {"Retry-After": "30"},
    )


def check_url(url: str) -> str:
    """``url`` if it is https, or http on a loopback host; ValueError otherwise."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and _loopback(host):
        return url
    raise ValueError(f"{url!r} must be an https URL (http only on a loopback host)")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class _Entry:
    keys: dict[str, jwt.PyJWK]
    fetched: float


class IssuerKeys:
    """Thread-safe: the mint endpoint runs in worker threads."""

    def __init__(
        self,
        pins: dict[str, Path] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pins = pins or {}
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def key(self, issuer: str, kid: str | None) -> jwt.PyJWK:
        """The key ``kid`` of ``issuer`` (the only key, when the token names none)."""
        with self._lock:
            now = self._clock()
            entry = self._entries.get(issuer)
            if entry is None or _due(entry, kid, now):
                entry = self._entries[issuer] = _Entry(self._load(issuer), now)
        found = _pick(entry.keys, kid)
        if found is None:
            raise refused(
                "invalid-token", f"the key id {kid!r} is not among the keys {issuer} publishes"
            )
        return found

    def _load(self, issuer: str) -> dict[str, jwt.PyJWK]:
        pinned = self._pins.get(issuer.rstrip("/"))
        if pinned is not None:
            try:
                return _keys(json.loads(pinned.read_bytes()))
            except (OSError, ValueError, jwt.PyJWKError) as exc:
                raise issuer_unavailable(issuer, f"pinned file: {exc}") from None
        try:
            config = self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
            if config.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
                raise ValueError("the discovery document names another issuer")
            jwks_uri = config.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise ValueError("the discovery document has no jwks_uri")
            return _keys(self._get_json(check_url(jwks_uri)))
        except (httpx.HTTPError, ValueError, jwt.PyJWKError) as exc:
            raise issuer_unavailable(issuer, str(exc) or type(exc).__name__) from None

    def _get_json(self, url: str) -> dict[str, Any]:
        with (
            httpx.Client(timeout=FETCH_TIMEOUT, follow_redirects=False) as client,
            client.stream("GET", check_url(url), headers={"Accept": "application/json"}) as r,
        ):
            if r.status_code != 200:
                raise ValueError(f"GET {url}: HTTP {r.status_code}")
            body = bytearray()
            for chunk in r.iter_bytes():
                body.extend(chunk)
                if len(body) > MAX_DOCUMENT:
                    raise ValueError(f"GET {url}: more than {MAX_DOCUMENT} bytes")
        value = json.loads(body)
        if not isinstance(value, dict):
            raise ValueError(f"GET {url}: not a JSON object")
        return value


def _due(entry: _Entry, kid: str | None, now: float) -> bool:
    """Refetch: the keys are old, or lack ``kid`` and were not fetched a moment ago."""
    age = now - entry.fetched
    return age > KEYS_TTL or (_pick(entry.keys, kid) is None and age > MIN_REFETCH)


def _keys(jwks: Any) -> dict[str, jwt.PyJWK]:
    """Signing keys by ``kid`` (a key without one is stored under ``""``)."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys = {}
    for item in jwks["keys"]:
        if not isinstance(item, dict) or item.get("use", "sig") != "sig":
            continue
        try:
            keys[str(item.get("kid", ""))] = jwt.PyJWK(item)
        except (jwt.PyJWKError, jwt.InvalidKeyError):
            continue  # a key type this library cannot use is one no accepted token is signed with
    if not keys:
        raise ValueError("the JWKS has no usable signing key")
    return keys


def _pick(keys: dict[str, jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
    if kid is None:
        return next(iter(keys.values())) if len(keys) == 1 else None
    return keys.get(kid)
