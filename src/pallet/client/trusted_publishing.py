"""Trusted publishing from CI: the job's OIDC identity exchanged for a short-lived upload token,
the same exchange uv and pypa's publish action make, so no long-lived secret is stored in CI.

1. ``GET <index origin>/_/oidc/audience`` names the ``aud`` the index wants;
2. the CI issues a token for it: GitHub Actions through ``ACTIONS_ID_TOKEN_REQUEST_URL``
   (the job needs ``permissions: id-token: write``), GitLab CI/CD in the variable an
   ``id_tokens:`` entry with that ``aud`` defines (``<AUD>_ID_TOKEN``: ``PALLET_ID_TOKEN`` for
   Pallet's default audience, as uv reads it);
3. ``POST <origin>/_/oidc/mint-token`` turns it into a token for the publisher's projects.

The origin is the upload URL's scheme and host (the endpoints live at the host's root, as on
PyPI). The token is burnt (``POST /_/oidc/burn-token``, as uv does) once the upload is done.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from pallet.client.transport import USER_AGENT, ClientError

MODES = ("auto", "always", "never")
TIMEOUT = 30.0


class TrustedPublishingError(ClientError):
    pass


@dataclass(frozen=True)
class Minted:
    token: str
    origin: str


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def ci_name(env: Mapping[str, str]) -> str | None:
    """The CI this process runs in, if it is one that can issue OIDC tokens."""
    if env.get("GITHUB_ACTIONS") == "true":
        return "GitHub Actions"
    if env.get("GITLAB_CI") == "true":
        return "GitLab CI/CD"
    return None


def gitlab_variable(audience: str) -> str:
    """The variable GitLab fills for an ``id_tokens:`` entry named after the audience."""
    return re.sub(r"[^A-Z0-9]", "_", audience.upper()) + "_ID_TOKEN"


def mint(url: str, env: Mapping[str, str]) -> Minted:
    base = origin(url)
    with httpx.Client(timeout=TIMEOUT, headers={"User-Agent": USER_AGENT}) as http:
        audience = _audience(http, base)
        oidc = _ci_token(http, env, audience)
        try:
            r = http.post(f"{base}/_/oidc/mint-token", json={"token": oidc})
        except httpx.HTTPError as exc:
            raise TrustedPublishingError(f"trusted publishing: {base}: {exc}") from None
        body = _json(r)
        if r.status_code != 200 or not isinstance(body.get("token"), str):
            reasons = "; ".join(
                f"{e.get('code')}: {e.get('description')}"
                for e in body.get("errors") or []
                if isinstance(e, dict)
            )
            raise TrustedPublishingError(
                f"trusted publishing: the index refused the {ci_name(env)} token "
                f"(HTTP {r.status_code}): {reasons or body.get('message') or 'no reason given'}"
            )
    return Minted(body["token"], base)


def burn(minted: Minted) -> str | None:
    """Revoke the minted token; a warning when that failed (it expires by itself anyway)."""
    try:
        with httpx.Client(timeout=TIMEOUT, headers={"User-Agent": USER_AGENT}) as http:
            r = http.post(f"{minted.origin}/_/oidc/burn-token", json={"token": minted.token})
    except httpx.HTTPError as exc:
        return f"the minted token was not revoked ({exc}); it expires in 15 minutes"
    if r.status_code != 202:
        return f"the minted token was not revoked (HTTP {r.status_code}); it expires by itself"
    return None


def _audience(http: httpx.Client, base: str) -> str:
    try:
        r = http.get(f"{base}/_/oidc/audience")
    except httpx.HTTPError as exc:
        raise TrustedPublishingError(f"trusted publishing: {base}: {exc}") from None
    audience = _json(r).get("audience") if r.status_code == 200 else None
    if not isinstance(audience, str) or not audience:
        raise TrustedPublishingError(
            f"trusted publishing: {base} does not offer it (GET /_/oidc/audience: "
            f"HTTP {r.status_code})"
        )
    return audience


def _ci_token(http: httpx.Client, env: Mapping[str, str], audience: str) -> str:
    ci = ci_name(env)
    if ci == "GitHub Actions":
        url, bearer = (
            env.get("ACTIONS_ID_TOKEN_REQUEST_URL"),
            env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
        )
        if not url or not bearer:
            raise TrustedPublishingError(
                "trusted publishing: GitHub Actions gives this job no OIDC token "
                "(add `permissions: id-token: write` to the job)"
            )
        try:
            r = http.get(
                url, params={"audience": audience}, headers={"Authorization": f"bearer {bearer}"}
            )
        except httpx.HTTPError as exc:
            raise TrustedPublishingError(
                f"trusted publishing: GitHub's token service: {exc}"
            ) from None
        value = _json(r).get("value") if r.status_code == 200 else None
        if not isinstance(value, str):
            raise TrustedPublishingError(
                f"trusted publishing: GitHub's token service answered HTTP {r.status_code}"
            )
        return value
    if ci == "GitLab CI/CD":
        name = gitlab_variable(audience)
        if not env.get(name):
            raise TrustedPublishingError(
                f"trusted publishing: ${name} is not set (declare it under id_tokens: "
                f"with aud: {audience})"
            )
        return env[name]
    raise TrustedPublishingError(
        "trusted publishing: not running in GitHub Actions or GitLab CI/CD, which issue the "
        "OIDC token it needs"
    )


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        value = r.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
