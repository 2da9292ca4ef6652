"""The OpenAPI description of the upstream proxy's audit log (``/_/proxy/audit``)."""

from __future__ import annotations

from pallet.openapi.operations import UPLOAD_AUTH, json_response, operation, problems
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
    audit = operation(
        "proxyAudit",
        "The upstream proxy's audit log: what was fetched from where, and why",
        "proxy",
        {"200": json_response("application/json", "ProxyAudit", "Newest first."), **problems(())},
        security=UPLOAD_AUTH,  # a token always, public index or not
        description="Always needs a token (it lists what this index's users depend on); a "
        "token limited to some projects reads their entries only.",
    )
    audit["parameters"] = [
        _query("project", "One project.", string()),
        _query("limit", "Entries (100).", {"type": "integer", "minimum": 1, "maximum": 1000}),
        _query("before", "Only entries older than this id.", {"type": "integer"}),
    ]
    return {"/_/proxy/audit": {"get": audit}}
