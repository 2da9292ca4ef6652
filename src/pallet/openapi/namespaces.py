"""The OpenAPI description of PEP 752's namespace API (``/namespaces``, ``/namespace/{name}``)
and the ``namespaces`` member it adds to a PEP 691 project page."""

from __future__ import annotations

from pallet.openapi.operations import READ_AUTH, json_response, operation, problems
from pallet.openapi.schemas import Schema, string

SCHEMAS: dict[str, Schema] = {
    "NamespaceList": {
        "type": "array",
        "description": "Every namespace claimed here (`pallet claim 'NAMESPACE-*'`).",
        "items": {
            "type": "object",
            "properties": {"name": string("The namespace, normalized.")},
            "required": ["name"],
        },
    },
    "Namespace": {
        "type": "object",
        "properties": {
            "name": string("The namespace, normalized."),
            "parent": {
                "type": ["string", "null"],
                "description": "The nearest claimed namespace this one is under, if any.",
            },
            "children": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The claimed namespaces directly under this one.",
            },
        },
        "required": ["name", "parent", "children"],
    },
    "ProjectNamespace": {
        "type": "object",
        "description": "A namespace covering the project (PEP 752; simple API version 1.5).",
        "properties": {
            "name": string("The namespace."),
            "owned": {
                "type": "boolean",
                "description": "False for a project that existed here before the claim.",
            },
        },
        "required": ["name", "owned"],
    },
}


def _get(op_id: str, summary: str, schema: str, statuses: dict[str, Schema]) -> Schema:
    ok = json_response("application/json", schema, summary)
    responses = {"200": ok, **statuses, **problems(())}
    return {"get": operation(op_id, summary, "namespaces", responses, security=READ_AUTH)}


def paths() -> dict[str, Schema]:
    detail = _get("namespace", "One namespace: its parent and direct children", "Namespace",
                  {"301": {"$ref": "#/components/responses/Redirect"}})  # fmt: skip
    detail["get"]["parameters"] = [
        {"name": "namespace", "in": "path", "required": True, "schema": string()}
    ]
    return {
        "/namespaces": _get("namespaces", "Every namespace claimed here", "NamespaceList", {}),
        "/namespace/{namespace}": detail,
    }
