"""``GET /_/upload-api``: where to upload, for a client that knows only the index's base URL.

PEP 694 defines no discovery document and the Upload 2.0 root is configurable, so a client would
otherwise have to guess. This is Pallet's own answer; it is read-path data, so a private index
asks for a token here as everywhere else.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pallet.auth.guard import require_reader
from pallet.core.upload2 import META
from pallet.public_url import base_url
from pallet.services import Services
from pallet.upload import mechanisms


async def upload_api(request: Request) -> Response:
    svc: Services = request.app.state.services
    require_reader(svc, request)
    base = base_url(request)
    return JSONResponse(
        {
            "meta": META,
            "upload-2.0": f"{base}{svc.settings.upload_root}",
            "legacy": f"{base}/legacy/",
            "simple": f"{base}/simple/",
            "mechanisms": mechanisms.advertised(),
        }
    )


routes = [Route("/_/upload-api", upload_api, methods=["GET", "HEAD"])]
