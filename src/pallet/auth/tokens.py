"""API tokens: ``pallet_<id>_<secret>``.

The id is public and locates the row; only an HMAC-SHA256 of the secret (keyed by the server
secret) is stored, and it is compared with ``hmac.compare_digest``. A database leak therefore
yields no usable token, and lookup time does not depend on how much of a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from packaging.utils import canonicalize_name
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from pallet.auth.scopes import SCOPES, UPLOAD_SCOPES
from pallet.db.clock import aware
from pallet.db.models import Token

PREFIX = "pallet_"
_TOKEN_ID = re.compile(r"[0-9a-f]{16}")
_T = Token.__table__.c
#: Built once and run as plain SQL (no ORM objects): every authenticated request runs it.
_ROW = select(
    _T.id, _T.secret_hash, _T.scope, _T.projects, _T.expires, _T.revoked, _T.publisher
).where(_T.id == bindparam("id"))


@dataclass(frozen=True)
class Principal:
    token_id: str
    scope: str
    projects: frozenset[str] | None  # normalised names, None = every project
    #: A genuine token that was revoked or has expired: known caller, no permission (403).
    inactive_reason: str | None = None
    #: PEP 740 publisher of a token minted by trusted publishing (pallet.auth.oidc), else None.
    publisher: dict | None = field(default=None, compare=False)

    def can_read(self, project: str | None = None) -> bool:
        return self.inactive_reason is None and self._covers(project)

    def can_upload(self, project: str) -> bool:
        return (
            self.inactive_reason is None and self.scope in UPLOAD_SCOPES and self._covers(project)
        )

    def _covers(self, project: str | None) -> bool:
        return (
            self.projects is None or project is None or canonicalize_name(project) in self.projects
        )


def _hash(secret_key: str, secret: str) -> str:
    return hmac.new(secret_key.encode(), secret.encode(), hashlib.sha256).hexdigest()


def create_token(
    session: Session,
    secret_key: str,
    *,
    scope: str = "upload",
    projects: list[str] | None = None,
    description: str = "",
    expires_in: timedelta | None = None,
    publisher: dict | None = None,
) -> tuple[Token, str]:
    """Insert a token row; return it with the full token string, which is never stored."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    row = Token(
        id=token_id,
        secret_hash=_hash(secret_key, secret),
        description=description,
        scope=scope,
        projects=sorted({canonicalize_name(p) for p in projects}) if projects else None,
        created=now,
        expires=now + expires_in if expires_in else None,
        publisher=publisher,
    )
    session.add(row)
    return row, f"{PREFIX}{token_id}_{secret}"


def verify_token(session: Session, secret_key: str, token: str) -> Principal | None:
    """The principal for a presented token, or None if it is unknown or its secret is wrong.

    A revoked or expired token still identifies its holder, but with ``inactive_reason`` set
    and no permission at all: the caller gets 403, telling them to mint a new token."""
    if not token.startswith(PREFIX):
        return None
    token_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or not _TOKEN_ID.fullmatch(token_id) or not secret:
        return None
    row = session.connection().execute(_ROW, {"id": token_id}).one_or_none()
    if row is None:
        # Spend the same HMAC work so a miss and a wrong secret take the same time.
        hmac.compare_digest(_hash(secret_key, secret), "0" * 64)
        return None
    if not hmac.compare_digest(_hash(secret_key, secret), row.secret_hash):
        return None
    return _principal(row)


def principal_by_id(session: Session, token_id: str) -> Principal | None:
    """The principal of a token already proven elsewhere: the web UI's signed session cookie
    names the token it was opened with. Revocation and expiry still apply on every request."""
    if not _TOKEN_ID.fullmatch(token_id):
        return None
    row = session.connection().execute(_ROW, {"id": token_id}).one_or_none()
    return None if row is None else _principal(row)


def _principal(row: Any) -> Principal:
    now = datetime.now(UTC)
    inactive = None
    if row.revoked is not None:
        inactive = "revoked"
    elif row.expires is not None and aware(row.expires) <= now:
        inactive = "expired"
    projects = frozenset(row.projects) if row.projects is not None else None
    return Principal(row.id, row.scope, projects, inactive_reason=inactive, publisher=row.publisher)
