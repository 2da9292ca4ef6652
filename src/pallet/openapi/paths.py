"""The OpenAPI document's paths for uploads outside Upload 2.0 (legacy, ``uv publish --direct``,
signed PUTs) and for reads; Upload 2.0's are in ``upload2``."""

from __future__ import annotations

from pallet.core.problems import PROBLEM_MEDIA_TYPE
from pallet.openapi.operations import (
    READ_AUTH,
    empty,
    header,
    json_response,
    operation,
    param,
    problems,
)
from pallet.openapi.schemas import (
    FORM,
    OCTETS,
    OPENAPI_MEDIA_TYPE,
    SIMPLE_HTML,
    SIMPLE_JSON,
    Schema,
    ref,
    string,
)


def direct_paths() -> dict[str, Schema]:
    out: dict[str, Schema] = {}
    form = (FORM, "DirectForm", True)
    for prefix in ("/direct/", "/direct//"):
        alias = prefix != "/direct/"
        suffix = "Alias" if alias else ""
        note = "The same endpoint (uv appends one segment to a publish URL ending in '/')."
        out[f"{prefix}reserve"] = {
            "post": operation(
                f"directReserve{suffix}",
                "uv publish --direct: reserve an upload URL",
                "direct",
                {
                    "200": json_response(
                        "application/json",
                        "DirectAlreadyUploaded",
                        "Identical file published: skip it.",
                    ),
                    "201": json_response(
                        "application/json",
                        "DirectReserved",
                        "PUT the file to upload_url with upload_headers.",
                    ),
                    **problems((400, 401, 403, 409, 413)),
                },
                body=form,
                description=note if alias else "Text fields only, no file part.",
            )
        }
        out[f"{prefix}finalize"] = {
            "post": operation(
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
                    **problems((400, 401, 403, 409, 413)),
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
            **operation(
                "signedPut",
                "Pre-signed PUT of a staged object (local backend)",
                "mechanisms",
                {
                    "200": empty("Stored."),
                    **problems((400, 403, 412, 413)),
                },
                body=(OCTETS, {"type": "string", "contentMediaType": OCTETS}, True),
                params=("key",),
                security=[],
                description="The signature is the credential: send every signed header with its "
                "signed value and no Authorization.",
            ),
            "parameters": [param("key"), *query],
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
    return operation(
        op_id, summary, tag, {"200": ok, **problems(statuses)}, params=params, security=READ_AUTH
    )


def _simple_ok(schema: str) -> Schema:
    return {
        "description": "PEP 691 JSON or PEP 503 HTML, by ?format= or Accept.",
        "headers": header("ETag"),
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
    simple_list["responses"]["304"] = empty("Not modified (If-None-Match).")
    project = _read(
        "simpleProject",
        "Simple index: one project's files",
        "simple",
        _simple_ok("SimpleProject"),
        params=("project", "format"),
        statuses=(401, 403, 404, 406),
    )
    project["responses"]["301"] = {"$ref": "#/components/responses/Redirect"}
    project["responses"]["304"] = empty("Not modified (If-None-Match).")
    project_noslash = {
        **project,
        "operationId": "simpleProjectNoSlash",
        "summary": "Redirects to /simple/{project}/",
    }
    pypi = _read(
        "pypiProject",
        "JSON API: a project (latest release)",
        "json-api",
        json_response("application/json", "PyPIProject", "The project."),
        params=("project",),
    )
    pypi["responses"]["301"] = {"$ref": "#/components/responses/Redirect"}
    pypi_release = {
        **pypi,
        "operationId": "pypiRelease",
        "summary": "JSON API: one release",
        "parameters": [param("project"), param("version")],
    }
    health = operation(
        "health",
        "Liveness: the process answers (it checks nothing it depends on)",
        "meta",
        {
            "200": json_response("application/json", "Health", "Alive."),
            "4XX": {"$ref": "#/components/responses/Problem"},
        },
        security=[{}],
    )
    ready = operation(
        "ready",
        "Readiness: database, blob store, and room to take an upload",
        "meta",
        {
            "200": json_response("application/json", "Ready", "Ready for uploads."),
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
            "get": operation(
                "simpleIndexNoSlash",
                "Redirects to /simple/",
                "simple",
                {"301": {"$ref": "#/components/responses/Redirect"}, **problems(())},
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
                json_response("application/json", "UploadApi", "Absolute URLs and mechanisms."),
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
            "post": operation(
                op_id,
                "Legacy upload (twine, uv, poetry, hatch, pdm)",
                "legacy",
                {
                    "200": json_response(
                        "application/json",
                        "LegacyUploaded",
                        "Published (or identical file already was).",
                    ),
                    **problems((400, 401, 403, 409, 413, 415)),
                },
                body=(FORM, "LegacyForm", True),
                description="" if path == "/legacy/" else "The same endpoint as POST /legacy/.",
            )
        }
    return out
