"""Builders of the OpenAPI document's operations and responses, shared by every family of
endpoints (``paths``, ``upload2`` and the feature modules)."""

from __future__ import annotations

from pallet.openapi.schemas import PROBLEM_CONTENT, UPLOAD2_PROBLEM_CONTENT, WHY, Schema, ref


def problems(statuses: tuple[int, ...], upload2: bool = False) -> dict[str, Schema]:
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


def param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


def header(*names: str) -> dict[str, Schema]:
    return {n: {"$ref": f"#/components/headers/{n}"} for n in names}


def json_response(media: str, schema: str | Schema, description: str, *headers: str) -> Schema:
    out: Schema = {
        "description": description,
        "content": {media: {"schema": ref(schema) if isinstance(schema, str) else schema}},
    }
    if headers:
        out["headers"] = header(*headers)
    return out


def empty(description: str) -> Schema:
    return {"description": description}


#: OpenAPI security requirements: scheme name -> scopes (none here); {} is anonymous.
Security = list[dict[str, list[str]]]

UPLOAD_AUTH: Security = [{"bearer": []}, {"basic": []}]
#: Reads: anonymous on a public index, a token covering the project on a private one.
READ_AUTH: Security = [{}, {"bearer": []}, {"basic": []}]


def operation(
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
        out["parameters"] = [param(p) for p in params]
    if body is not None:
        media, schema, required = body
        out["requestBody"] = {
            "required": required,
            "content": {media: {"schema": ref(schema) if isinstance(schema, str) else schema}},
        }
    out["security"] = UPLOAD_AUTH if security is None else security
    return out
