"""``GET /openapi.json``: an OpenAPI 3.1 description of Pallet's JSON endpoints.

It covers Upload 2.0 (PEP 694) with its mechanisms' byte routes, the discovery document, the
``uv publish --direct`` reserve/finalize forms, the signed ``/_/blobs`` PUT, the legacy form
upload, the PEP 691 simple index, the JSON API and the health and readiness checks. Every 4xx
and 5xx is an RFC 9457 problem document (but for the 503 body of a failed health or readiness
check). The document is built from Python data, once per Upload 2.0 root (the root is
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
from pallet.core.upload2 import API_VERSION, MAX_BODY, MEDIA_TYPE
from pallet.public_url import base_url
from pallet.services import Services

Schema = dict[str, Any]

#: The media type registered for OpenAPI documents, with the version it follows.
OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.1"
OPENAPI_VERSION = "3.1.0"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
SIMPLE_HTML = "application/vnd.pypi.simple.v1+html"
OCTETS = "application/octet-stream"
FORM = "multipart/form-data"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _string(description: str = "", **kw: Any) -> Schema:
    out: Schema = {"type": "string", **kw}
    if description:
        out["description"] = description
    return out


def _object(properties: dict[str, Schema], required: tuple[str, ...] = (), **kw: Any) -> Schema:
    out: Schema = {"type": "object", "properties": properties, **kw}
    if required:
        out["required"] = list(required)
    return out


HEX64 = "^[0-9a-f]{64}$"
RFC3339 = _string("RFC 3339, UTC, whole seconds, literal Z.", format="date-time")
URL = _string(format="uri")

# --- schemas ---------------------------------------------------------------------------------

_META = _object(
    {"api-version": _string("MAJOR.MINOR; the major must be 2.", pattern=r"^2\.[0-9]+$")},
    ("api-version",),
    description="PEP 694 `meta`; index-specific keys start with `_`.",
)

_PROBLEM = _object(
    {
        "type": _string(f"A stable URI `{TYPE_PREFIX}<slug>` to switch on.", format="uri"),
        "title": _string("Short, human-readable summary of the problem kind."),
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": _string("What went wrong with this request."),
        "errors": {"type": "array", "items": ref("ProblemError")},
        "meta": ref("Meta"),
    },
    ("type", "title", "status"),
    description="RFC 9457 problem details; other members (such as `state`) may follow.",
    additionalProperties=True,
)

_UPLOAD2_PROBLEM = {
    "allOf": [ref("Problem"), {"type": "object", "required": ["meta", "errors"]}],
    "description": "An Upload 2.0 problem always carries `meta` and `errors` (PEP 694).",
}

_SESSION_STATUS = {"enum": ["open", "processing", "published", "error", "canceled"]}
_FILE_STATUS = {"enum": ["pending", "processing", "completed", "error", "canceled"]}

_SESSION = _object(
    {
        "meta": ref("Meta"),
        "links": _object(
            {k: URL for k in ("session", "upload", "publish", "extend", "stage")},
            ("session", "upload", "publish"),
        ),
        "mechanisms": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "session-token": _string("Builds the stage URL; 192 random bits."),
        "expires-at": RFC3339,
        "status": _SESSION_STATUS,
        "files": {"type": "object", "additionalProperties": ref("FileEntry")},
        "notices": {"type": "array", "items": {"type": "string"}},
    },
    ("meta", "links", "mechanisms", "expires-at", "status", "files"),
)

_FILE_ENTRY = _object(
    {
        "status": {"enum": ["pending", "processing", "completed", "error"]},
        "link": URL,
        "notices": {"type": "array", "items": {"type": "string"}},
    },
    ("status", "link"),
)

_HTTP_POST_BYTES = _object(
    {
        "identifier": {"const": "http-post-bytes"},
        "file_url": URL,
        "attestations_url": URL,
    },
    ("identifier", "file_url", "attestations_url"),
)

_PRESIGNED_PUT = _object(
    {
        "identifier": {"const": "vnd-pallet-presigned-put"},
        "method": {"const": "PUT"},
        "url": URL,
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "expires-at": RFC3339,
    },
    ("identifier",),
)

_MULTIPART = _object(
    {
        "identifier": {"const": "vnd-pallet-s3multipart-presigned"},
        "upload-id": {"type": ["string", "null"]},
        "part-size": {"type": ["integer", "null"]},
        "parts_url": URL,
        "parts": {
            "type": "array",
            "items": _object(
                {
                    "part-number": {"type": "integer", "minimum": 1},
                    "size": {"type": "integer"},
                    "url": URL,
                },
                ("part-number", "size", "url"),
            ),
        },
        "expires-at": RFC3339,
    },
    ("identifier", "parts_url"),
)

_FILE_SESSION = _object(
    {
        "meta": ref("Meta"),
        "links": _object(
            {k: URL for k in ("file-upload-session", "complete", "extend")},
            ("file-upload-session", "complete"),
        ),
        "status": _FILE_STATUS,
        "expires-at": RFC3339,
        "mechanism": {
            "description": "`identifier` plus what the mechanism needs to move the bytes.",
            "anyOf": [
                ref("HttpPostBytes"),
                ref("PresignedPut"),
                ref("S3MultipartPresigned"),
                _object({"identifier": {"type": "string"}}, ("identifier",)),
            ],
        },
    },
    ("meta", "links", "status", "expires-at", "mechanism"),
)

_CREATE_SESSION = _object(
    {
        "meta": ref("Meta"),
        "name": _string("A valid project name; normalized by the server."),
        "version": _string("A PEP 440 version."),
    },
    ("meta", "name", "version"),
)

_CREATE_FILE = _object(
    {
        "meta": ref("Meta"),
        "filename": _string("A wheel or sdist filename of this session's name and version."),
        "size": {"type": "integer", "minimum": 1},
        "hashes": {
            "type": "object",
            "description": "hashlib name -> lowercase hex digest; at least one secure algorithm.",
            "additionalProperties": _string(pattern="^[0-9a-f]+$"),
            "minProperties": 1,
        },
        "mechanism": _string("One of the session's `mechanisms`."),
    },
    ("meta", "filename", "size", "hashes", "mechanism"),
)

_EXTEND = _object(
    {
        "meta": ref("Meta"),
        "extend-for": {
            "type": "integer",
            "minimum": 0,
            "description": "Seconds wanted; a hint, granted up to the index's cap.",
        },
    },
    ("meta", "extend-for"),
)

_ACTION = _object({"meta": ref("Meta")}, ("meta",))

_ATTESTATIONS = {
    "type": "array",
    "description": "PEP 740 attestation objects (version 1, one in-toto subject: this file).",
    "items": _object(
        {
            "version": {"const": 1},
            "verification_material": {"type": "object"},
            "envelope": {"type": "object"},
        },
        ("version",),
    ),
}

_PART_ETAGS = {
    "type": "array",
    "items": _object(
        {"part-number": {"type": "integer", "minimum": 1}, "etag": {"type": "string"}},
        ("part-number", "etag"),
    ),
}

_STORED_PARTS = {
    "type": "array",
    "items": _object(
        {
            "part-number": {"type": "integer"},
            "etag": {"type": "string"},
            "size": {"type": "integer"},
        },
        ("part-number", "etag", "size"),
    ),
}

_UPLOAD_API = _object(
    {
        "meta": ref("Meta"),
        "upload-2.0": URL,
        "legacy": URL,
        "simple": URL,
        "mechanisms": {"type": "array", "items": {"type": "string"}},
    },
    ("meta", "upload-2.0", "legacy", "simple", "mechanisms"),
)

_HEALTH = _object(
    {
        "status": {"enum": ["ok", "error"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
        "version": _string("Absent on a private index."),
    },
    ("status", "checks"),
)

_READY = _object(
    {
        "status": {"enum": ["ready", "not ready"]},
        "checks": {
            "type": "object",
            "description": "database, storage, and free space for the spool (and local blobs).",
            "additionalProperties": {"type": "string"},
        },
    },
    ("status", "checks"),
)

_METADATA_FIELDS = (
    "metadata_version",
    "summary",
    "description",
    "description_content_type",
    "author",
    "author_email",
    "maintainer",
    "maintainer_email",
    "license",
    "license_expression",
    "keywords",
    "home_page",
    "download_url",
    "requires_python",
)
_REPEATED_FIELDS = (
    "classifiers",
    "dynamic",
    "license_file",
    "obsoletes_dist",
    "platform",
    "project_urls",
    "provides_dist",
    "provides_extra",
    "import_names",
    "import_namespaces",
    "requires_dist",
    "requires_external",
)


def _upload_form(extra: dict[str, Schema], required: tuple[str, ...]) -> Schema:
    """The text fields twine and uv send (the legacy form, and ``--direct`` without the file)."""
    properties: dict[str, Schema] = {
        ":action": {"const": "file_upload"},
        "protocol_version": {"const": "1"},
        "name": _string("The project name as in the metadata."),
        "version": _string(),
        "filetype": {"enum": ["bdist_wheel", "sdist"]},
        "pyversion": _string("Wheel python tags joined by '.', or 'source'."),
        "md5_digest": _string(pattern="^[0-9a-fA-F]{32}$"),
        "sha256_digest": _string(pattern="^[0-9a-fA-F]{64}$"),
        "blake2_256_digest": _string(pattern="^[0-9a-fA-F]{64}$"),
    }
    properties.update({f: _string() for f in _METADATA_FIELDS})
    properties.update({f: {"type": "array", "items": {"type": "string"}} for f in _REPEATED_FIELDS})
    properties.update(extra)
    return _object(properties, (":action", "name", "version", "filetype", *required))


_LEGACY_FORM = _upload_form(
    {
        "content": _string(
            "The distribution; its part's filename is the file's name.", contentMediaType=OCTETS
        ),
        "attestations": _string(
            "A JSON array of PEP 740 attestations.", contentMediaType="application/json"
        ),
    },
    ("content",),
)
_DIRECT_FORM = _upload_form(
    {"filename": _string("The distribution's filename.")}, ("filename", "sha256_digest")
)

_LEGACY_UPLOADED = _object(
    {"filename": _string(), "sha256": _string(pattern=HEX64), "created": {"type": "boolean"}},
    ("filename",),
)
_DIRECT_RESERVED = _object(
    {
        "upload_url": {
            "type": ["string", "null"],
            "description": "null: the bytes are already stored.",
        },
        "upload_headers": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
    },
    ("upload_url", "upload_headers"),
)
_DIRECT_ALREADY = _object(
    {"filename": _string(), "status": {"const": "already uploaded"}}, ("filename", "status")
)
_DIRECT_FINALIZED = _object({"filename": _string(), "created": {"type": "boolean"}}, ("filename",))

_SIMPLE_META = _object(
    {"api-version": _string(), "_last-serial": {"type": "integer"}}, ("api-version",)
)
_SIMPLE_LIST = _object(
    {
        "meta": ref("SimpleMeta"),
        "projects": {"type": "array", "items": _object({"name": _string()}, ("name",))},
    },
    ("meta", "projects"),
)
_SIMPLE_FILE = _object(
    {
        "filename": _string(),
        "url": _string(format="uri-reference"),
        "hashes": {"type": "object", "additionalProperties": {"type": "string"}},
        "requires-python": {"type": ["string", "null"]},
        "size": {"type": "integer"},
        "upload-time": _string(format="date-time"),
        "yanked": {"type": ["boolean", "string"]},
        "core-metadata": {"oneOf": [{"type": "boolean"}, {"type": "object"}]},
        "dist-info-metadata": {"oneOf": [{"type": "boolean"}, {"type": "object"}]},
        "provenance": {"type": ["string", "null"]},
    },
    ("filename", "url", "hashes"),
)
_SIMPLE_PROJECT = _object(
    {
        "meta": ref("SimpleMeta"),
        "name": _string(),
        "versions": {"type": "array", "items": {"type": "string"}},
        "files": {"type": "array", "items": ref("SimpleFile")},
    },
    ("meta", "name", "files"),
)
_PYPI_JSON = _object(
    {
        "info": {"type": "object"},
        "last_serial": {"type": "integer"},
        "urls": {"type": "array", "items": {"type": "object"}},
        "releases": {"type": "object"},
        "vulnerabilities": {"type": "array"},
    },
    ("info", "last_serial", "urls"),
    description="PyPI's JSON API shape (`releases` only on the project URL).",
)

SCHEMAS: dict[str, Schema] = {
    "Meta": _META,
    "ProblemError": _object({"source": _string(), "message": _string()}, ("source", "message")),
    "Problem": _PROBLEM,
    "Upload2Problem": _UPLOAD2_PROBLEM,
    "CreateSessionRequest": _CREATE_SESSION,
    "CreateFileRequest": _CREATE_FILE,
    "ExtendRequest": _EXTEND,
    "ActionRequest": _ACTION,
    "Session": _SESSION,
    "FileEntry": _FILE_ENTRY,
    "FileSession": _FILE_SESSION,
    "HttpPostBytes": _HTTP_POST_BYTES,
    "PresignedPut": _PRESIGNED_PUT,
    "S3MultipartPresigned": _MULTIPART,
    "Attestations": _ATTESTATIONS,
    "PartEtags": _PART_ETAGS,
    "StoredParts": _STORED_PARTS,
    "UploadApi": _UPLOAD_API,
    "Health": _HEALTH,
    "Ready": _READY,
    "LegacyForm": _LEGACY_FORM,
    "LegacyUploaded": _LEGACY_UPLOADED,
    "DirectForm": _DIRECT_FORM,
    "DirectReserved": _DIRECT_RESERVED,
    "DirectAlreadyUploaded": _DIRECT_ALREADY,
    "DirectFinalized": _DIRECT_FINALIZED,
    "SimpleMeta": _SIMPLE_META,
    "SimpleProjectList": _SIMPLE_LIST,
    "SimpleFile": _SIMPLE_FILE,
    "SimpleProject": _SIMPLE_PROJECT,
    "PyPIProject": _PYPI_JSON,
}

# --- parameters, headers, responses ----------------------------------------------------------

PARAMETERS: dict[str, Schema] = {
    "sid": {
        "name": "sid",
        "in": "path",
        "required": True,
        "description": "Publishing session id (128 random bits, hex).",
        "schema": _string(pattern="^[0-9a-f]{32}$"),
    },
    "fid": {
        "name": "fid",
        "in": "path",
        "required": True,
        "description": "File-upload session id (128 random bits, hex).",
        "schema": _string(pattern="^[0-9a-f]{32}$"),
    },
    "project": {
        "name": "project",
        "in": "path",
        "required": True,
        "description": "A project name; a non-normalized one is redirected (301).",
        "schema": _string(),
    },
    "version": {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": _string("A PEP 440 version."),
    },
    "key": {
        "name": "key",
        "in": "path",
        "required": True,
        "description": "The storage key the URL was signed for (may contain '/').",
        "schema": _string(),
    },
    "format": {
        "name": "format",
        "in": "query",
        "required": False,
        "description": "PEP 691: one media type, which wins over Accept (anything else: 406).",
        "schema": {
            "enum": [
                SIMPLE_JSON,
                SIMPLE_HTML,
                "text/html",
                "application/vnd.pypi.simple.latest+json",
                "application/vnd.pypi.simple.latest+html",
            ]
        },
    },
}

HEADERS: dict[str, Schema] = {
    "Location": {"description": "URL of the resource.", "schema": URL},
    "Retry-After": {
        "description": "Seconds to wait before polling.",
        "schema": {"type": "integer"},
    },
    "ETag": {"schema": _string()},
}

_PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": ref("Problem")}}
_UPLOAD2_PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": ref("Upload2Problem")}}

RESPONSES: dict[str, Schema] = {
    "Problem": {"description": "An RFC 9457 problem document.", "content": _PROBLEM_CONTENT},
    "Upload2Problem": {
        "description": "An RFC 9457 problem document with PEP 694's `meta` and `errors`.",
        "content": _UPLOAD2_PROBLEM_CONTENT,
    },
    "Redirect": {
        "description": "Moved to the normalized URL (relative Location, query kept).",
        "headers": {"Location": {"schema": _string(format="uri-reference")}},
    },
}

# Why each status is answered, per family of endpoints (the problem's `type` says exactly).
_WHY = {
    400: "Malformed request (bad JSON, field or filename; `errors` lists each).",
    401: "No or unknown credentials.",
    403: "The credentials may not do this (other project, read-only, revoked, bad signature).",
    404: "No such resource (or past its retention period).",
    406: "The Accept header excludes every representation served here.",
    409: "Conflict with the current state (see the problem's `type` and `state`).",
    412: "The signed URL was already used (If-None-Match: *).",
    413: "The body is larger than this endpoint takes.",
    415: "Wrong Content-Type.",
    422: "The requested mechanism is not offered.",
    503: "Overloaded (Retry-After) or a dependency is down.",
}


def _problems(statuses: tuple[int, ...], upload2: bool = False) -> dict[str, Schema]:
    """Listed statuses with why, plus the 4XX and 5XX ranges: every error is a problem."""
    name = "Upload2Problem" if upload2 else "Problem"
    out: dict[str, Schema] = {}
    for status in statuses:
        out[str(status)] = {
            "description": _WHY[status],
            "content": _UPLOAD2_PROBLEM_CONTENT if upload2 else _PROBLEM_CONTENT,
        }
    out["4XX"] = {"$ref": f"#/components/responses/{name}"}
    out["5XX"] = {"$ref": f"#/components/responses/{name}"}
    return out


def _param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


def _header(*names: str) -> dict[str, Schema]:
    return {n: {"$ref": f"#/components/headers/{n}"} for n in names}


def _json(media: str, schema: str | Schema, description: str, *headers: str) -> Schema:
    out: Schema = {
        "description": description,
        "content": {media: {"schema": ref(schema) if isinstance(schema, str) else schema}},
    }
    if headers:
        out["headers"] = _header(*headers)
    return out


def _empty(description: str) -> Schema:
    return {"description": description}


#: OpenAPI security requirements: scheme name -> scopes (none here); {} is anonymous.
Security = list[dict[str, list[str]]]

UPLOAD_AUTH: Security = [{"bearer": []}, {"basic": []}]
#: Reads: anonymous on a public index, a token covering the project on a private one.
READ_AUTH: Security = [{}, {"bearer": []}, {"basic": []}]


def _op(
    op_id: str,
    summary: str,
    tag: str,
    responses: dict[str, Schema],
    *,
    body: tuple[str, str | Schema, bool] | None = None,
    params: tuple[str, ...] = (),
    security: Security | None = None,
    description: str = "",
) -> Schema:
    out: Schema = {
        "operationId": op_id,
        "summary": summary,
        "tags": [tag],
        "responses": responses,
    }
    if description:
        out["description"] = description
    if params:
        out["parameters"] = [_param(p) for p in params]
    if body is not None:
        media, schema, required = body
        out["requestBody"] = {
            "required": required,
            "content": {media: {"schema": ref(schema) if isinstance(schema, str) else schema}},
        }
    out["security"] = UPLOAD_AUTH if security is None else security
    return out


# --- paths ------------------------------------------------------------------------------------


def _upload2_paths(root: str) -> dict[str, Schema]:
    s = f"{root}sessions/{{sid}}/"
    f = f"{s}files/{{fid}}/"
    u2 = MEDIA_TYPE
    sid, fid = ("sid",), ("sid", "fid")

    def errs(*statuses: int) -> dict[str, Schema]:
        return _problems((400, 401, 403, 406, *statuses), upload2=True)

    json_body = (415, 413)
    return {
        root: {
            "post": _op(
                "createSession",
                "Create a publishing session",
                "upload-2.0",
                {
                    "201": _json(u2, "Session", "Created; Location = links.session.", "Location"),
                    "409": {
                        "description": "A session for this name-version is open: Location names it.",
                        "headers": _header("Location"),
                        "content": _UPLOAD2_PROBLEM_CONTENT,
                    },
                    **errs(*json_body),
                },
                body=(u2, "CreateSessionRequest", True),
                description=f"JSON bodies are at most {MAX_BODY} bytes (413 beyond).",
            )
        },
        s: {
            "get": _op(
                "getSession",
                "Publishing session status",
                "upload-2.0",
                {
                    "200": _json(
                        u2, "Session", "The session (Retry-After while processing).", "Retry-After"
                    ),
                    **errs(404),
                },
                params=sid,
            ),
            "delete": _op(
                "cancelSession",
                "Cancel a publishing session",
                "upload-2.0",
                {"204": _empty("Canceled; staged files purged."), **errs(404, 409)},
                params=sid,
            ),
        },
        f"{s}publish": {
            "post": _op(
                "publishSession",
                "Publish every completed file atomically",
                "upload-2.0",
                {
                    "201": _json(u2, "Session", "Published.", "Location"),
                    "202": _json(
                        u2, "Session", "Publishing in the background.", "Location", "Retry-After"
                    ),
                    **errs(404, 409, *json_body),
                },
                body=(u2, "ActionRequest", True),
                params=sid,
            )
        },
        f"{s}extend": {
            "post": _op(
                "extendSession",
                "Extend a publishing session",
                "upload-2.0",
                {
                    "200": _json(u2, "Session", "The current expires-at."),
                    **errs(404, 409, *json_body),
                },
                body=(u2, "ExtendRequest", True),
                params=sid,
            )
        },
        f"{s}files/": {
            "post": _op(
                "createFile",
                "Create a file-upload session",
                "upload-2.0",
                {
                    "202": _json(
                        u2, "FileSession", "Created; send the bytes.", "Location", "Retry-After"
                    ),
                    **errs(404, 409, 422, *json_body),
                },
                body=(u2, "CreateFileRequest", True),
                params=sid,
            )
        },
        f: {
            "get": _op(
                "getFile",
                "File-upload session status",
                "upload-2.0",
                {
                    "200": _json(
                        u2, "FileSession", "The file session (fresh signed URLs).", "Retry-After"
                    ),
                    **errs(404),
                },
                params=fid,
            ),
            "delete": _op(
                "deleteFile",
                "Cancel an upload or delete a staged file",
                "upload-2.0",
                {"204": _empty("Deleted."), **errs(404, 409)},
                params=fid,
            ),
        },
        f"{f}complete": {
            "post": _op(
                "completeFile",
                "Complete a file upload (verify the bytes)",
                "upload-2.0",
                {
                    "201": _json(u2, "FileSession", "Completed.", "Location"),
                    "202": _json(
                        u2, "FileSession", "Verifying in the background.", "Location", "Retry-After"
                    ),
                    **errs(404, 409, *json_body),
                },
                body=(u2, "ActionRequest", True),
                params=fid,
            )
        },
        f"{f}extend": {
            "post": _op(
                "extendFile",
                "Extend a file-upload session",
                "upload-2.0",
                {
                    "200": _json(u2, "FileSession", "The current expires-at."),
                    **errs(404, 409, *json_body),
                },
                body=(u2, "ExtendRequest", True),
                params=fid,
            )
        },
        f"{f}content": {
            "post": _op(
                "sendBytes",
                "http-post-bytes: send the file",
                "mechanisms",
                {"204": _empty("Stored (replaces earlier bytes)."), **errs(404, 409, 413, 415)},
                body=(OCTETS, {"type": "string", "contentMediaType": OCTETS}, True),
                params=fid,
                description="Content-Length must equal the declared size (400 size-mismatch).",
            )
        },
        f"{f}attestations": {
            "post": _op(
                "sendAttestations",
                "http-post-bytes: PEP 740 attestations for the file",
                "mechanisms",
                {"204": _empty("Stored."), **errs(404, 409, 413, 415)},
                body=("application/json", "Attestations", True),
                params=fid,
            )
        },
        f"{f}parts": {
            "get": _op(
                "listParts",
                "vnd-pallet-s3multipart-presigned: parts already stored",
                "mechanisms",
                {"200": _json("application/json", "StoredParts", "Stored parts."), **errs(404)},
                params=fid,
            ),
            "post": _op(
                "reportEtags",
                "vnd-pallet-s3multipart-presigned: report part ETags",
                "mechanisms",
                {"204": _empty("Recorded; complete checks them."), **errs(404, 409, 413)},
                body=("application/json", "PartEtags", True),
                params=fid,
            ),
        },
    }


def _direct_paths() -> dict[str, Schema]:
    out: dict[str, Schema] = {}
    form = (FORM, "DirectForm", True)
    for prefix in ("/direct/", "/direct//"):
        alias = prefix != "/direct/"
        suffix = "Alias" if alias else ""
        note = "The same endpoint (uv appends one segment to a publish URL ending in '/')."
        out[f"{prefix}reserve"] = {
            "post": _op(
                f"directReserve{suffix}",
                "uv publish --direct: reserve an upload URL",
                "direct",
                {
                    "200": _json(
                        "application/json",
                        "DirectAlreadyUploaded",
                        "Identical file published: skip it.",
                    ),
                    "201": _json(
                        "application/json",
                        "DirectReserved",
                        "PUT the file to upload_url with upload_headers.",
                    ),
                    **_problems((400, 401, 403, 409, 413)),
                },
                body=form,
                description=note if alias else "Text fields only, no file part.",
            )
        }
        out[f"{prefix}finalize"] = {
            "post": _op(
                f"directFinalize{suffix}",
                "uv publish --direct: verify and publish the PUT bytes",
                "direct",
                {
                    "200": {
                        "description": "Published (or the identical file already was).",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "anyOf": [ref("DirectFinalized"), ref("DirectAlreadyUploaded")]
                                }
                            }
                        },
                    },
                    **_problems((400, 401, 403, 409, 413)),
                },
                body=form,
                description=note if alias else "",
            )
        }
    return out


def _signed_put() -> Schema:
    query = [
        {"name": n, "in": "query", "required": True, "schema": schema}
        for n, schema in (
            ("X-Pallet-Expires", {"type": "integer", "description": "Unix time."}),
            ("X-Pallet-SignedHeaders", _string("Lower-case header names joined by ';'.")),
            ("X-Pallet-Signature", _string("HMAC-SHA256, hex.", pattern="^[0-9a-f]{64}$")),
        )
    ]
    return {
        "put": {
            **_op(
                "signedPut",
                "Pre-signed PUT of a staged object (local backend)",
                "mechanisms",
                {
                    "200": _empty("Stored."),
                    **_problems((400, 403, 412, 413)),
                },
                body=(OCTETS, {"type": "string", "contentMediaType": OCTETS}, True),
                params=("key",),
                security=[],
                description="The signature is the credential: send every signed header with its "
                "signed value and no Authorization.",
            ),
            "parameters": [_param("key"), *query],
        }
    }


def _read(
    op_id: str,
    summary: str,
    tag: str,
    ok: Schema,
    *,
    params: tuple[str, ...] = (),
    statuses: tuple[int, ...] = (401, 403, 404),
) -> Schema:
    return _op(
        op_id, summary, tag, {"200": ok, **_problems(statuses)}, params=params, security=READ_AUTH
    )


def _simple_ok(schema: str) -> Schema:
    return {
        "description": "PEP 691 JSON or PEP 503 HTML, by ?format= or Accept.",
        "headers": _header("ETag"),
        "content": {
            SIMPLE_JSON: {"schema": ref(schema)},
            SIMPLE_HTML: {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
        },
    }


def _read_paths() -> dict[str, Schema]:
    simple_list = _read(
        "simpleIndex",
        "Simple index: every project",
        "simple",
        _simple_ok("SimpleProjectList"),
        params=("format",),
        statuses=(401, 403, 406),
    )
    simple_list["responses"]["304"] = _empty("Not modified (If-None-Match).")
    project = _read(
        "simpleProject",
        "Simple index: one project's files",
        "simple",
        _simple_ok("SimpleProject"),
        params=("project", "format"),
        statuses=(401, 403, 404, 406),
    )
    project["responses"]["301"] = {"$ref": "#/components/responses/Redirect"}
    project["responses"]["304"] = _empty("Not modified (If-None-Match).")
    project_noslash = {
        **project,
        "operationId": "simpleProjectNoSlash",
        "summary": "Redirects to /simple/{project}/",
    }
    pypi = _read(
        "pypiProject",
        "JSON API: a project (latest release)",
        "json-api",
        _json("application/json", "PyPIProject", "The project."),
        params=("project",),
    )
    pypi["responses"]["301"] = {"$ref": "#/components/responses/Redirect"}
    pypi_release = {
        **pypi,
        "operationId": "pypiRelease",
        "summary": "JSON API: one release",
        "parameters": [_param("project"), _param("version")],
    }
    health = _op(
        "health",
        "Database and blob store check",
        "meta",
        {
            "200": _json("application/json", "Health", "Healthy."),
            "503": {
                "description": "A check failed (the health body), or the server is overloaded "
                "(a problem).",
                "content": {
                    "application/json": {"schema": ref("Health")},
                    PROBLEM_MEDIA_TYPE: {"schema": ref("Problem")},
                },
            },
            "4XX": {"$ref": "#/components/responses/Problem"},
        },
        security=[{}],
    )
    ready = _op(
        "ready",
        "Readiness: health plus room to take an upload",
        "meta",
        {
            "200": _json("application/json", "Ready", "Ready for uploads."),
            "503": {
                "description": "Not ready (the readiness body), or overloaded (a problem).",
                "content": {
                    "application/json": {"schema": ref("Ready")},
                    PROBLEM_MEDIA_TYPE: {"schema": ref("Problem")},
                },
            },
            "4XX": {"$ref": "#/components/responses/Problem"},
        },
        security=[{}],
    )
    return {
        "/simple/": {"get": simple_list},
        "/simple": {
            "get": _op(
                "simpleIndexNoSlash",
                "Redirects to /simple/",
                "simple",
                {"301": {"$ref": "#/components/responses/Redirect"}, **_problems(())},
                security=[{}],
            ),
        },
        "/simple/{project}/": {"get": project},
        "/simple/{project}": {"get": project_noslash},
        "/pypi/{project}/json": {"get": pypi},
        "/pypi/{project}/{version}/json": {"get": pypi_release},
        "/_/upload-api": {
            "get": _read(
                "uploadApi",
                "Where to upload (Pallet's discovery document)",
                "meta",
                _json("application/json", "UploadApi", "Absolute URLs and mechanisms."),
                statuses=(401, 403),
            ),
        },
        "/openapi.json": {
            "get": _read(
                "openapi",
                "This document",
                "meta",
                {
                    "description": "OpenAPI 3.1.",
                    "content": {OPENAPI_MEDIA_TYPE: {"schema": {"type": "object"}}},
                },
                statuses=(401, 403),
            ),
        },
        "/_/health": {"get": health},
        "/_/ready": {"get": ready},
    }


def _legacy_paths() -> dict[str, Schema]:
    out = {}
    for path, op_id in (
        ("/legacy/", "legacyUpload"),
        ("/legacy", "legacyUploadNoSlash"),
        ("/", "legacyUploadRoot"),
    ):
        out[path] = {
            "post": _op(
                op_id,
                "Legacy upload (twine, uv, poetry, hatch, pdm)",
                "legacy",
                {
                    "200": _json(
                        "application/json",
                        "LegacyUploaded",
                        "Published (or identical file already was).",
                    ),
                    **_problems((400, 401, 403, 409, 413, 415)),
                },
                body=(FORM, "LegacyForm", True),
                description="" if path == "/legacy/" else "The same endpoint as POST /legacy/.",
            )
        }
    return out


@lru_cache(maxsize=4)
def document(upload_root: str = "/upload/2.0/") -> dict[str, Any]:
    """The OpenAPI document for an app whose Upload 2.0 root is ``upload_root`` (no
    ``servers``: the endpoint adds the base URL of the request). Cached: do not mutate."""
    paths: dict[str, Schema] = {}
    paths.update(_upload2_paths(upload_root))
    paths.update(_direct_paths())
    paths["/_/blobs/{key}"] = _signed_put()
    paths.update(_legacy_paths())
    paths.update(_read_paths())
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
        ],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
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
