"""``/_/oidc/``: the endpoints trusted-publishing clients call, at the root of the index's host
(uv, twine and the publish action drop the upload URL's path and ask ``/_/oidc/...``).

The exchange (PyJWT, httpx) loads on the first token request: a worker that never sees one
never pays for it."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pallet.auth.oidc.errors import refused
from pallet.auth.tokens import verify_token
from pallet.connections import read_bounded
from pallet.db.models import Token
from pallet.db.session import write_session
from pallet.services import Services

MAX_BODY = 64 * 1024


async def audience(request: Request) -> Response:
    svc: Services = request.app.state.services
    return JSONResponse({"audience": svc.settings.oidc_audience})


async def mint_token(request: Request) -> Response:
    from pallet.auth.oidc import exchange

    svc: Services = request.app.state.services
    token = exchange.presented_token(await read_bounded(request, MAX_BODY, "Token requests"))
    minted = await run_in_threadpool(
        exchange.mint,
        svc.engine,
        svc.issuer_keys(),
        svc.settings.secret_key,
        svc.settings.oidc_audience,
        token,
    )
    return JSONResponse(minted.to_json(), headers={"Cache-Control": "no-store"})


async def burn_token(request: Request) -> Response:
    """``POST /_/oidc/burn-token`` with ``{"token": <minted token>}``: revoke it once the upload is
    done, so it is dead before its 15 minutes are (uv does this after publishing, as
    ``pallet publish`` does). Holding the token is the right to burn it; only minted tokens
    burn here (others are revoked with ``pallet token revoke``)."""
    from pallet.auth.oidc import exchange

    svc: Services = request.app.state.services
    token = exchange.presented_token(await read_bounded(request, MAX_BODY, "Token requests"))

    def revoke() -> None:
        with write_session(svc.engine, durable=True) as s:
            principal = verify_token(s, svc.settings.secret_key, token)
            if principal is None or principal.publisher is None:
                raise refused("invalid-token", "not a token minted by trusted publishing")
            row = s.get(Token, principal.token_id)
            if row is not None and row.revoked is None:
                row.revoked = datetime.now(UTC)

    await run_in_threadpool(revoke)
    return JSONResponse({"message": "Accepted"}, status_code=202)


routes = [
    Route("/_/oidc/audience", audience, methods=["GET"]),
    Route("/_/oidc/mint-token", mint_token, methods=["POST"]),
    # The path the first releases of pypa's publish action post to; PyPI still answers it.
    Route("/_/oidc/github/mint-token", mint_token, methods=["POST"]),
    Route("/_/oidc/burn-token", burn_token, methods=["POST"]),
]
