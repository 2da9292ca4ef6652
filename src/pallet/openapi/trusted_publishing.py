"""The OpenAPI description of trusted publishing (``/_/oidc/``) and PEP 740's integrity API."""

from __future__ import annotations

from pallet.core.problems import PROBLEM_MEDIA_TYPE
from pallet.openapi.schemas import Schema, ref, string

INTEGRITY_MEDIA_TYPE = "application/vnd.pypi.integrity.v1+json"

_TOKEN_REQUEST: Schema = {
    "type": "object",
    "properties": {"token": string("An OIDC token, or (burn-token) a minted upload token.")},
    "required": ["token"],
}
_REFUSED: Schema = {
    "allOf": [
        ref("Problem"),
        {
            "type": "object",
            "properties": {
                "message": string("Always `Token request failed`."),
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "code": string(
                                "PyPI's: invalid-payload, invalid-token, invalid-publisher, "
                                "invalid-pending-publisher, invalid-reuse-token."
                            ),
                            "description": string("What failed; claim names, never values."),
                        },
                        "required": ["code", "description"],
                    },
                },
            },
            "required": ["message", "errors"],
        },
    ],
    "description": "A problem with the members PyPI's clients read (`message`, `errors`).",
}
SCHEMAS: dict[str, Schema] = {
    "TokenRequest": _TOKEN_REQUEST,
    "TokenRefused": _REFUSED,
    "Audience": {
        "type": "object",
        "properties": {"audience": string("The `aud` an OIDC token must carry.")},
        "required": ["audience"],
    },
    "MintedToken": {
        "type": "object",
        "properties": {
            "success": {"const": True},
            "token": string("An upload token for the publisher's projects."),
            "expires": {"type": "integer", "description": "Unix time; 15 minutes on."},
        },
        "required": ["success", "token", "expires"],
    },
    "Provenance": {
        "type": "object",
        "description": "PEP 740's provenance object.",
        "properties": {
            "version": {"const": 1},
            "attestation_bundles": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "publisher": {"type": "object", "required": ["kind"]},
                        "attestations": {"type": "array", "items": {"type": "object"}},
                    },
                    "required": ["publisher", "attestations"],
                },
            },
        },
        "required": ["version", "attestation_bundles"],
    },
}


def _content(schema: str) -> Schema:
    return {"application/json": {"schema": ref(schema)}}


def _refused(description: str) -> Schema:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": ref("TokenRefused")}},
    }


def _problem(description: str) -> Schema:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": ref("Problem")}}}


def _path_param(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": string()}  # fmt: skip


def paths() -> dict[str, Schema]:
    mint: Schema = {
        "operationId": "mintToken",
        "summary": "Exchange a CI job's OIDC token for a 15-minute upload token",
        "tags": ["trusted-publishing"],
        "security": [{}],
        "requestBody": {
            "required": True,
            "description": "JSON, whatever the Content-Type says (old uv sent none).",
            "content": {"application/json": {"schema": ref("TokenRequest")}},
        },
        "responses": {
            "200": {"description": "Minted.", "content": _content("MintedToken")},
            "413": _problem("The body is larger than 64 KiB."),
            "422": _refused("The token was refused (see `errors`)."),
            "503": _refused("The issuer's keys could not be fetched (Retry-After)."),
            "4XX": {"$ref": "#/components/responses/Problem"},
            "5XX": {"$ref": "#/components/responses/Problem"},
        },
    }
    return {
        "/_/oidc/audience": {
            "get": {
                "operationId": "oidcAudience",
                "summary": "The audience OIDC tokens must be issued for",
                "tags": ["trusted-publishing"],
                "security": [{}],
                "responses": {
                    "200": {"description": "The audience.", "content": _content("Audience")},
                    "4XX": {"$ref": "#/components/responses/Problem"},
                },
            }
        },
        "/_/oidc/mint-token": {"post": mint},
        "/_/oidc/github/mint-token": {
            "post": {
                **mint,
                "operationId": "mintTokenGitHub",
                "description": "The path early releases of pypa's publish action use.",
            }
        },
        "/_/oidc/burn-token": {
            "post": {
                "operationId": "burnToken",
                "summary": "Revoke a minted upload token once its upload is done",
                "tags": ["trusted-publishing"],
                "security": [{}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("TokenRequest")}},
                },
                "responses": {
                    "202": {"description": "Revoked (or already was)."},
                    "422": _refused("Not a token minted by trusted publishing."),
                    "4XX": {"$ref": "#/components/responses/Problem"},
                    "5XX": {"$ref": "#/components/responses/Problem"},
                },
            }
        },
        "/integrity/{project}/{version}/{filename}/provenance": {
            "get": {
                "operationId": "provenance",
                "summary": "PEP 740 provenance of a file (its verified attestations)",
                "tags": ["simple"],
                "security": [{}, {"bearer": []}, {"basic": []}],
                "parameters": [
                    _path_param("project", "A project name (normalized here)."),
                    _path_param("version", "The release's version."),
                    _path_param("filename", "The file's name."),
                ],
                "responses": {
                    "200": {
                        "description": "The provenance object.",
                        "headers": {"Cache-Control": {"schema": string()}},
                        "content": {
                            INTEGRITY_MEDIA_TYPE: {"schema": ref("Provenance")},
                            "application/json": {"schema": ref("Provenance")},
                        },
                    },
                    "401": _problem("A private index asks for a token."),
                    "403": _problem("The token cannot read this project."),
                    "404": _problem("No such file, or it has no verified attestations."),
                    "406": _problem("Accept names neither representation."),
                    "4XX": {"$ref": "#/components/responses/Problem"},
                    "5XX": {"$ref": "#/components/responses/Problem"},
                },
            }
        },
    }
