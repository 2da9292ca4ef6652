"""Signing in to the web UI with an API token, and keeping the browser's session.

The token is checked once, at sign-in; the cookie then holds only the token's public id and a
sign-in time, signed with the server secret (HMAC-SHA256), never the token itself. Every request
reloads that token's row, so revoking it or its expiry ends the browser session at once on every
replica. The cookie is HttpOnly, SameSite=Lax, and Secure when the page came over HTTPS.

Every form carries a CSRF token: the HMAC of a random nonce kept in its own cookie (a signed
double submit), so another site can neither make a signed-in browser press Publish nor sign it in
to someone else's session; SameSite alone would not cover every browser and method.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from pallet.auth.tokens import Principal, principal_by_id

COOKIE = "pallet_session"
CSRF_COOKIE = "pallet_csrf"
LIFETIME = 12 * 3600  # seconds a browser session lasts, whatever the token's own expiry


def _mac(secret_key: str, purpose: str, value: str) -> str:
    digest = hmac.new(secret_key.encode(), f"{purpose}|{value}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def cookie_value(secret_key: str, token_id: str, now: float | None = None) -> str:
    body = f"{token_id}.{int(time.time() if now is None else now)}"
    return f"{body}.{_mac(secret_key, 'session', body)}"


def token_id_of(secret_key: str, cookie: str | None, now: float | None = None) -> str | None:
    """The token id a genuine, unexpired cookie names; None for anything else."""
    if not cookie or len(cookie) > 200:
        return None
    body, _, mac = cookie.rpartition(".")
    token_id, _, issued = body.partition(".")
    if not hmac.compare_digest(mac, _mac(secret_key, "session", body)) or not issued.isdigit():
        return None
    age = (time.time() if now is None else now) - int(issued)
    return token_id if 0 <= age <= LIFETIME else None


def principal(s: Session, secret_key: str, request: Request) -> Principal | None:
    """The signed-in principal, or None (signed out, tampered, expired, revoked)."""
    token_id = token_id_of(secret_key, request.cookies.get(COOKIE))
    if token_id is None:
        return None
    found = principal_by_id(s, token_id)
    return found if found is not None and found.inactive_reason is None else None


def csrf_nonce(request: Request) -> str:
    """The browser's CSRF nonce, or a new one (``set_csrf`` stores it with the response)."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    return nonce if 16 <= len(nonce) <= 64 else secrets.token_urlsafe(24)


def csrf_token(secret_key: str, nonce: str) -> str:
    return _mac(secret_key, "csrf", nonce)


def set_csrf(response: Response, request: Request, nonce: str) -> None:
    if request.cookies.get(CSRF_COOKIE) != nonce:
        response.set_cookie(
            CSRF_COOKIE, nonce, httponly=True, samesite="lax", path="/",
            secure=request.url.scheme == "https",
        )  # fmt: skip


def csrf_ok(secret_key: str, request: Request, presented: object) -> bool:
    nonce = request.cookies.get(CSRF_COOKIE)
    return (
        isinstance(presented, str)
        and bool(nonce)
        and hmac.compare_digest(presented, _mac(secret_key, "csrf", nonce or ""))
    )


def open_session(response: Response, request: Request, secret_key: str, token_id: str) -> None:
    response.set_cookie(
        COOKIE,
        cookie_value(secret_key, token_id),
        max_age=LIFETIME,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def close_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
