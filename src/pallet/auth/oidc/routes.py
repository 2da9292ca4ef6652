"""``/_/oidc/``: the endpoints trusted-publishing clients call, at the root of the index's host
(uv, twine and the publish action drop the upload URL's path and ask ``/_/oidc/...``)."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pallet.auth.guard import require_uploader
from pallet.auth.oidc import exchange
from pallet.connections import early_too_large
from pallet.core.problems import Problem
from pallet.db.models import Token
from pallet.db.session import write_session
from pallet.services import Services

MAX_BODY = 64 * 1024


async def audience(request: Request) -> Response:
    svc: Services = request.app.state.services
    return JSONResponse({"audience": svc.settings.oidc_audience})


async def mint_token(request: Request) -> Response:
    svc: Services = request.app.state.services
    too_large = early_too_large(request.headers, MAX_BODY, "Token requests")
    if too_large is not None:
        raise too_large
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_BODY:
            raise exchange.refused("invalid-payload", "the body is larger than 64 KiB", 413)
    token = exchange.presented_token(bytes(raw))
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
    """``DELETE /_/oidc/token``: the caller revokes the minted token it authenticates with, once
    its upload is done (``pallet publish`` does), so it is dead before its 15 minutes are."""
    svc: Services = request.app.state.services

    def revoke() -> None:
        with write_session(svc.engine, durable=True) as s:
            principal = require_uploader(svc, request, s)
            if principal.publisher is None:
                raise Problem(
                    403,
                    "forbidden",
                    "Not a minted token",
                    "Only tokens minted by trusted publishing are burnt here; "
                    "revoke others with 'pallet token revoke'.",
                )
            row = s.get(Token, principal.token_id)
            assert row is not None
            row.revoked = datetime.now(UTC)

    await run_in_threadpool(revoke)
    return Response(status_code=204)


routes = [
    Route("/_/oidc/audience", audience, methods=["GET"]),
    Route("/_/oidc/mint-token", mint_token, methods=["POST"]),
    # The path the first releases of pypa's publish action post to; PyPI still answers it.
    Route("/_/oidc/github/mint-token", mint_token, methods=["POST"]),
    Route("/_/oidc/token", burn_token, methods=["DELETE"]),
]
