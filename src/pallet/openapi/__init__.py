"""``GET /openapi.json``: an OpenAPI 3.1 description of Pallet's JSON endpoints.

It covers Upload 2.0 (PEP 694) with its mechanisms' byte routes, the discovery document, the
``uv publish --direct`` reserve/finalize forms, the signed ``/_/blobs`` PUT, the legacy form
upload, the PEP 691 simple index and PEP 740 provenance, the JSON API, trusted publishing's
``/_/oidc/`` endpoints, PEP 752's namespaces, the proxy's audit log and the health and readiness checks. Every 4xx and 5xx is an RFC 9457
problem document (but for the 503 body of a failed health or readiness check). The document is built from Python data, once per Upload 2.0 root (the root is
configurable, so the paths depend on it); the test suite compares it with the routes the app
registers, so it cannot drift from them.

Like ``/_/upload-api`` it is read-path data: a private index asks for a token first.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pallet import __version__
from pallet.auth.guard import require_reader
from pallet.core.problems import PROBLEM_MEDIA_TYPE, TYPE_PREFIX
from pallet.core.upload2 import API_VERSION, MEDIA_TYPE
from pallet.openapi import namespaces, proxy, trusted_publishing, upload2
from pallet.openapi.paths import (
    direct_paths,
    legacy_paths,
    read_paths,
    signed_put,
)
from pallet.openapi.schemas import (
    HEADERS,
    OPENAPI_MEDIA_TYPE,
    OPENAPI_VERSION,
    PARAMETERS,
    RESPONSES,
    SCHEMAS,
    Schema,
)
from pallet.public_url import base_url
from pallet.services import Services


@lru_cache(maxsize=4)
def document(upload_root: str = "/upload/2.0/") -> dict[str, Any]:
    """The OpenAPI document for an app whose Upload 2.0 root is ``upload_root`` (no
    ``servers``: the endpoint adds the base URL of the request). Cached: do not mutate."""
    paths: dict[str, Schema] = {}
    paths.update(upload2.paths(upload_root))
    paths.update(direct_paths())
    paths["/_/blobs/{key}"] = signed_put()
    paths.update(legacy_paths())
    paths.update(read_paths())
    paths.update(trusted_publishing.paths())
    paths.update(namespaces.paths())
    paths.update(proxy.paths())
    doc: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Pallet",
            "version": __version__,
            "summary": "A self-hosted Python package index with PEP 694 Upload 2.0.",
            "description": (
                f"Upload 2.0 requests and responses use `{MEDIA_TYPE}` with "
                f"`meta.api-version` {API_VERSION}; every error is an RFC 9457 "
                f"`{PROBLEM_MEDIA_TYPE}` document whose `type` is `{TYPE_PREFIX}<slug>`."
            ),
        },
        "tags": [
            {"name": "upload-2.0", "description": "PEP 694 publishing and file-upload sessions."},
            {"name": "mechanisms", "description": "How the bytes of one file arrive."},
            {"name": "direct", "description": "uv publish --direct (reserve, PUT, finalize)."},
            {"name": "legacy", "description": "The legacy form upload."},
            {"name": "simple", "description": "PEP 503/691 simple repository API."},
            {"name": "json-api", "description": "PyPI's JSON API."},
            {"name": "meta", "description": "Discovery, this document, health."},
            {
                "name": "trusted-publishing",
                "description": "OIDC tokens from CI exchanged for upload tokens.",
            },
            {"name": "namespaces", "description": "PEP 752 package repository namespaces."},
            {"name": "proxy", "description": "The upstream proxy's audit log."},
        ],
        "paths": paths,
        "components": {
            "schemas": {
                **SCHEMAS,
                **upload2.SCHEMAS,
                **trusted_publishing.SCHEMAS,
                **namespaces.SCHEMAS,
                **proxy.SCHEMAS,
            },
            "parameters": PARAMETERS,
            "headers": HEADERS,
            "responses": RESPONSES,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token."},
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "User `__token__`, password = an API token.",
                },
            },
        },
    }
    return doc


async def openapi_json(request: Request) -> Response:
    svc: Services = request.app.state.services
    require_reader(svc, request)
    # The base URL is built like every other absolute URL the index hands out.
    doc = {**document(svc.settings.upload_root), "servers": [{"url": base_url(request) or "/"}]}
    return Response(json.dumps(doc, separators=(",", ":")), media_type=OPENAPI_MEDIA_TYPE)


routes = [Route("/openapi.json", openapi_json, methods=["GET", "HEAD"])]
