"""The OpenAPI description of the upstream proxy's audit log (``/_/proxy/audit``)."""

from __future__ import annotations

from pallet.openapi.schemas import Schema, ref, string

_ENTRY: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "at": string(format="date-time"),
        "project": string("The project, normalised."),
        "upstream": string("The upstream's name (`--upstream NAME=URL`)."),
        "kind": {"enum": ["page", "file", "metadata"]},
        "url": string("What was fetched.", format="uri"),
        "sha256": {"type": ["string", "null"], "description": "The digest checked."},
        "decision": string("The routing decision that let it go upstream."),
        "outcome": string("`stored`, `not modified`, `refused: <why>`, ..."),
    },
    "required": ["id", "at", "project", "upstream", "kind", "url", "decision", "outcome"],
}
SCHEMAS: dict[str, Schema] = {
    "ProxyAuditEntry": _ENTRY,
    "ProxyAudit": {
        "type": "object",
        "properties": {
            "entries": {"type": "array", "items": ref("ProxyAuditEntry")},
            "before": {
                "type": ["integer", "null"],
                "description": "Pass as `?before=` for the next, older page.",
            },
        },
        "required": ["entries", "before"],
    },
}


def _query(name: str, description: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}  # fmt: skip


def paths() -> dict[str, Schema]:
    body = {"application/json": {"schema": ref("ProxyAudit")}}
    ok = {"description": "Newest first.", "content": body}
    return {
        "/_/proxy/audit": {
            "get": {
                "operationId": "proxyAudit",
                "summary": "The upstream proxy's audit log: what was fetched from where, and why",
                "description": "Always needs a token (it lists what this index's users depend "
                "on); a token limited to some projects reads their entries only.",
                "tags": ["proxy"],
                "security": [{"bearer": []}, {"basic": []}],
                "parameters": [
                    _query("project", "One project.", string()),
                    _query(
                        "limit",
                        "Entries (100).",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                    ),  # fmt: skip
                    _query("before", "Only entries older than this id.", {"type": "integer"}),
                ],
                "responses": {"200": ok, "4XX": {"$ref": "#/components/responses/Problem"}},
            }
        }
    }
