"""Request-level authorization. Credentials are checked on every request (nothing is cached
per connection), so a revoked token stops working at once on every replica."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from pallet.auth.credentials import token_from_authorization
from pallet.auth.scopes import UPLOAD_SCOPES
from pallet.auth.tokens import Principal, verify_token
from pallet.core.problems import Problem
from pallet.db.models import Token
from pallet.db.session import read_session
from pallet.services import Services

REALM = 'Basic realm="pallet", charset="UTF-8"'
#: ``pallet_<16 hex id>_<secret>``, as ``pallet.auth.tokens.create_token`` makes them.
_TOKEN_SHAPE = re.compile(r"pallet_([0-9a-f]{16})_\S+", re.ASCII)


def unauthorized(detail: str) -> Problem:
    return Problem(
        401, "unauthorized", "Authentication required", detail, headers={"WWW-Authenticate": REALM}
    )


def authenticate(
    services: Services, request: Request, session: Session | None = None
) -> Principal | None:
    """The request's principal. ``session``: a transaction the caller has open anyway, so the
    token check shares it instead of opening its own."""
    token = token_from_authorization(request.headers.get("authorization"))
    if token is None:
        return None
    if session is None:
        with read_session(services.engine) as s:
            return _checked(services, s, token)
    return _checked(services, session, token)


def _checked(services: Services, s: Session, token: str) -> Principal:
    principal = verify_token(s, services.settings.secret_key, token)
    if principal is None:
        raise unauthorized(_why_refused(s, token))
    if principal.inactive_reason:
        raise Problem(
            403,
            "token-inactive",
            f"Token {principal.inactive_reason}",
            f"Token {principal.token_id} was {principal.inactive_reason}; create a new one.",
        )
    return principal


def _why_refused(session: Session, token: str) -> str:
    """The 401 detail for a token ``verify_token`` refused. It names the token's id (public, and
    only when it has the shape of one), never its secret."""
    match = _TOKEN_SHAPE.match(token)
    if match is None:
        return "The token is not valid for this index."
    token_id = match.group(1)
    if session.get(Token, token_id) is None:
        return (
            f"Token {token_id} is not known to this index "
            "(was it created against another data dir or database?)."
        )
    return (
        f"The secret of token {token_id} does not match (is it complete, and was it created "
        "with this index's secret key?)."
    )


def require_uploader(
    services: Services, request: Request, session: Session | None = None
) -> Principal:
    principal = authenticate(services, request, session)
    if principal is None:
        raise unauthorized(
            "Uploads need an API token: user '__token__', password = the token "
            "(create one with 'pallet token create')."
        )
    if principal.scope not in UPLOAD_SCOPES:
        raise Problem(403, "forbidden", "Token cannot upload", "This token is read-only.")
    return principal


def require_reader(
    services: Services, request: Request, project: str | None = None
) -> Principal | None:
    """In private mode every read needs a token that covers the project."""
    if not services.settings.private:
        return None
    principal = authenticate(services, request)
    if principal is None:
        raise unauthorized("This index is private: authenticate with an API token.")
    if not principal.can_read(project):
        raise Problem(403, "forbidden", "Not allowed", f"This token cannot read {project!r}.")
    return principal


async def reader(
    services: Services, request: Request, project: str | None = None
) -> Principal | None:
    """``require_reader`` for handlers on the event loop: a private index checks the token in a
    worker thread (a database read); a public one costs nothing."""
    if not services.settings.private:
        return None
    return await run_in_threadpool(require_reader, services, request, project)
