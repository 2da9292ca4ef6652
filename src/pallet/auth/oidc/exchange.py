"""Trusted publishing: an OIDC identity token from CI in, a short-lived upload token out.

The answers are PyPI's (``POST /_/oidc/mint-token``), so uv, the pypa publish action and
``pallet publish`` work unchanged: 200 ``{"success": true, "token": ..., "expires": ...}``, or
422 with ``message`` and ``errors: [{code, description}]``, which those clients print; Pallet
sends that as an RFC 9457 problem (the same members, plus ``type`` and ``title``). An error names
what failed (the claims that did not match), never the token nor a claim's value.

The minted token is an ordinary Pallet token (hashed, scoped to the publisher's projects,
15 minutes), carrying the publisher's identity for the files it uploads, so every upload path
stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pallet.auth.oidc import claims as rules
from pallet.auth.oidc.errors import refused
from pallet.auth.oidc.keys import IssuerKeys
from pallet.auth.tokens import create_token
from pallet.core.untrusted import UPLOAD2, load_json
from pallet.db.models import Project, TrustedPublisher, UsedOidcToken
from pallet.db.session import read_session, write_session

TOKEN_LIFETIME = timedelta(minutes=15)
#: Seconds of clock skew allowed between the issuer and this index, as PyPI allows.
LEEWAY = 30
#: Asymmetric algorithms only: ``none`` and the HMAC family would let anyone who knows the
#: key's public half, or nothing at all, forge a token.
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384", "PS512")
MAX_TOKEN = 16 * 1024
#: A spent ``jti`` is remembered until its token expires: tokens valid for longer are refused
#: (CI tokens live minutes).
MAX_LIFETIME = timedelta(days=1)
MAX_JTI = 200  # the column's width


@dataclass(frozen=True)
class Minted:
    token: str
    expires: datetime
    projects: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"success": True, "token": self.token, "expires": int(self.expires.timestamp())}


def presented_token(body: bytes) -> str:
    """The JWT of a mint request: ``{"token": "<jwt>"}``, whatever the Content-Type (uv before
    0.10.10 sent none)."""
    try:
        value = load_json(body, UPLOAD2)
    except ValueError:
        value = None
    token = value.get("token") if isinstance(value, dict) else None
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise refused("invalid-payload", 'the body must be {"token": "<OIDC token>"}')
    return token


def mint(engine: Any, keys: IssuerKeys, secret_key: str, audience: str, token: str) -> Minted:
    issuer, header = _unverified_issuer(token)
    with read_session(engine) as s:
        publishers = (
            s.execute(select(TrustedPublisher).where(TrustedPublisher.issuer == issuer))
            .scalars()
            .all()
        )
    if not publishers:
        shown = issuer if len(issuer) <= 200 else issuer[:200] + "..."
        raise refused("invalid-payload", f"unknown trusted publishing issuer {shown!r}")
    claims = _verified(token, keys, issuer, header, audience)
    matched, closest = _match(publishers, issuer, claims)
    if not matched:
        raise refused(
            "invalid-publisher",
            "valid token, but no corresponding publisher (claims that did not match: "
            + ", ".join(closest)
            + ")",
        )
    try:
        with write_session(engine, durable=True) as s:
            minted = _record(s, matched, issuer, claims, secret_key)
    except IntegrityError:  # another replica exchanged this token a moment ago
        raise refused("invalid-reuse-token", "invalid token: already used") from None
    if minted is None:  # the token is spent even so: it cannot be tried again
        raise refused("invalid-pending-publisher", "valid token, but the project already exists")
    return minted


def _unverified_issuer(token: str) -> tuple[str, dict[str, Any]]:
    try:
        header = jwt.get_unverified_header(token)
        payload = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, RecursionError):  # RecursionError: JSON nested deep
        raise refused("invalid-payload", "malformed JWT") from None
    issuer = payload.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise refused("invalid-payload", "malformed JWT: no issuer")
    return issuer, header


def _verified(
    token: str, keys: IssuerKeys, issuer: str, header: dict[str, Any], audience: str
) -> dict[str, Any]:
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise refused("invalid-token", f"signing algorithm {alg!r} is not accepted")
    kid = header.get("kid")
    key = keys.key(issuer, kid if isinstance(kid, str) else None)
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY,
            options={"require": list(rules.REQUIRED), "strict_aud": True},
        )
    except jwt.ExpiredSignatureError:
        raise refused("invalid-token", "the token has expired (exp)") from None
    except jwt.ImmatureSignatureError:
        raise refused("invalid-token", "the token is not valid yet (nbf or iat)") from None
    except jwt.InvalidAudienceError:
        raise refused(
            "invalid-token", f"the token's audience (aud) is not this index's, {audience!r}"
        ) from None
    except jwt.InvalidSignatureError:
        raise refused("invalid-token", "the token's signature does not verify") from None
    except jwt.MissingRequiredClaimError as exc:
        raise refused("invalid-token", f"the token has no {exc.claim!r} claim") from None
    except jwt.PyJWTError as exc:
        raise refused(
            "invalid-token", f"malformed or invalid token ({type(exc).__name__})"
        ) from None
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:
        raise refused("invalid-token", f"the token's jti must be a string of 1 to {MAX_JTI}")
    if claims["exp"] > (datetime.now(UTC) + MAX_LIFETIME).timestamp():
        raise refused("invalid-token", "the token is valid for more than a day (exp)")
    return claims


def _match(
    publishers: Any, issuer: str, claims: dict[str, Any]
) -> tuple[list[TrustedPublisher], list[str]]:
    """The publishers the token satisfies, and the claims the nearest miss broke."""
    matched, closest = [], None
    for p in publishers:
        bad = rules.mismatches(p.kind, issuer, p.rules, claims)
        if not bad:
            matched.append(p)
        elif closest is None or len(bad) < len(closest):
            closest = bad
    return matched, closest or []


def _record(
    s: Session, matched: list[TrustedPublisher], issuer: str, claims: dict[str, Any], key: str
) -> Minted | None:
    """Spend the ``jti``, claim pending names, pin owner ids, mint: one transaction."""
    if s.get(UsedOidcToken, (issuer, claims["jti"])) is not None:
        raise refused("invalid-reuse-token", "invalid token: already used")
    s.add(
        UsedOidcToken(
            issuer=issuer,
            jti=claims["jti"],
            expires_at=datetime.fromtimestamp(int(claims["exp"]) + LEEWAY + 5, UTC),
        )
    )
    granted = []
    for p in (s.merge(p) for p in matched):
        if p.pending:
            if s.execute(select(Project.id).where(Project.normalized_name == p.project)).first():
                # Someone else created the project since the publisher was added: the name
                # is no longer the publisher's to claim (as PyPI voids such a publisher).
                continue
            p.pending = False
        if p.kind == rules.GITHUB and not p.rules.get("owner_id"):
            p.rules = {**p.rules, "owner_id": claims["repository_owner_id"]}
        granted.append(p)
    if not granted:
        return None
    projects = sorted({p.project for p in granted})
    first = granted[0]
    row, token = create_token(
        s,
        key,
        scope="upload",
        projects=projects,
        description=f"trusted publishing: {first.identity}",
        expires_in=TOKEN_LIFETIME,
        publisher=rules.publisher(first.kind, issuer, first.rules, claims),
    )
    assert row.expires is not None
    return Minted(token, row.expires, projects)
