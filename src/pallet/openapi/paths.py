"""The OpenAPI document's operations, one builder per family of endpoints."""

from __future__ import annotations

from pallet.core.problems import PROBLEM_MEDIA_TYPE
from pallet.core.upload2 import MAX_BODY, MEDIA_TYPE
from pallet.openapi.schemas import (
    FORM,
    OCTETS,
    OPENAPI_MEDIA_TYPE,
    PROBLEM_CONTENT,
    SIMPLE_HTML,
    SIMPLE_JSON,
    UPLOAD2_PROBLEM_CONTENT,
    WHY,
    Schema,
    ref,
    string,
)


def _problems(statuses: tuple[int, ...], upload2: bool = False) -> dict[str, Schema]:
    """Listed statuses with why, plus the 4XX and 5XX ranges: every error is a problem."""
    name = "Upload2Problem" if upload2 else "Problem"
    out: dict[str, Schema] = {}
    for status in statuses:
        out[str(status)] = {
            "description": WHY[status],
            "content": UPLOAD2_PROBLEM_CONTENT if upload2 else PROBLEM_CONTENT,
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


def upload2_paths(root: str) -> dict[str, Schema]:
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
                        "content": UPLOAD2_PROBLEM_CONTENT,
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


def direct_paths() -> dict[str, Schema]:
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


def signed_put() -> Schema:
    query = [
        {"name": n, "in": "query", "required": True, "schema": schema}
        for n, schema in (
            ("X-Pallet-Expires", {"type": "integer", "description": "Unix time."}),
            ("X-Pallet-SignedHeaders", string("Lower-case header names joined by ';'.")),
            ("X-Pallet-Signature", string("HMAC-SHA256, hex.", pattern="^[0-9a-f]{64}$")),
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


def read_paths() -> dict[str, Schema]:
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
        "Liveness: the process answers (it checks nothing it depends on)",
        "meta",
        {
            "200": _json("application/json", "Health", "Alive."),
            "4XX": {"$ref": "#/components/responses/Problem"},
        },
        security=[{}],
    )
    ready = _op(
        "ready",
        "Readiness: database, blob store, and room to take an upload",
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


def legacy_paths() -> dict[str, Schema]:
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


