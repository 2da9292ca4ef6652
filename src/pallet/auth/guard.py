"""Request-level authorization. Credentials are checked on every request (nothing is cached
per connection), so a revoked token stops working at once on every replica."""

from __future__ import annotations

from starlette.requests import Request

from pallet.auth.credentials import token_from_authorization
from pallet.auth.tokens import UPLOAD_SCOPES, Principal, verify_token
from pallet.core.problems import Problem
from pallet.db.session import read_session
from pallet.services import Services

REALM = 'Basic realm="pallet", charset="UTF-8"'


def unauthorized(detail: str) -> Problem:
    return Problem(
        401, "unauthorized", "Authentication required", detail, headers={"WWW-Authenticate": REALM}
    )


def authenticate(services: Services, request: Request) -> Principal | None:
    token = token_from_authorization(request.headers.get("authorization"))
    if token is None:
        return None
    with read_session(services.engine) as s:
        principal = verify_token(s, services.settings.secret_key, token)
    if principal is None:
        raise unauthorized("The token is not valid for this index.")
    if principal.inactive_reason:
        raise Problem(
            403,
            "token-inactive",
            f"Token {principal.inactive_reason}",
            f"Token {principal.token_id} was {principal.inactive_reason}; create a new one.",
        )
    return principal


def require_uploader(services: Services, request: Request) -> Principal:
    principal = authenticate(services, request)
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
