"""The OpenAPI document's components: media types, schemas, parameters, headers and the
problem responses every error shares."""

from __future__ import annotations

from typing import Any

from pallet.core.problems import PROBLEM_MEDIA_TYPE, TYPE_PREFIX

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


def string(description: str = "", **kw: Any) -> Schema:
    out: Schema = {"type": "string", **kw}
    if description:
        out["description"] = description
    return out


def object_of(properties: dict[str, Schema], required: tuple[str, ...] = (), **kw: Any) -> Schema:
    out: Schema = {"type": "object", "properties": properties, **kw}
    if required:
        out["required"] = list(required)
    return out


HEX64 = "^[0-9a-f]{64}$"
RFC3339 = string("RFC 3339, UTC, whole seconds, literal Z.", format="date-time")
URL = string(format="uri")

# --- schemas ---------------------------------------------------------------------------------

_META = object_of(
    {"api-version": string("MAJOR.MINOR; the major must be 2.", pattern=r"^2\.[0-9]+$")},
    ("api-version",),
    description="PEP 694 `meta`; index-specific keys start with `_`.",
)

_PROBLEM = object_of(
    {
        "type": string(f"A stable URI `{TYPE_PREFIX}<slug>` to switch on.", format="uri"),
        "title": string("Short, human-readable summary of the problem kind."),
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": string("What went wrong with this request."),
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

_UPLOAD_API = object_of(
    {
        "meta": ref("Meta"),
        "upload-2.0": URL,
        "legacy": URL,
        "simple": URL,
        "mechanisms": {"type": "array", "items": {"type": "string"}},
    },
    ("meta", "upload-2.0", "legacy", "simple", "mechanisms"),
)

_HEALTH = object_of(
    {
        "status": {"enum": ["ok"]},
        "replica": string("This replica's id (--replica-id); absent on a private index."),
        "version": string("Absent on a private index."),
    },
    ("status",),
)

_READY = object_of(
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
        "name": string("The project name as in the metadata."),
        "version": string(),
        "filetype": {"enum": ["bdist_wheel", "sdist"]},
        "pyversion": string("Wheel python tags joined by '.', or 'source'."),
        "md5_digest": string(pattern="^[0-9a-fA-F]{32}$"),
        "sha256_digest": string(pattern="^[0-9a-fA-F]{64}$"),
        "blake2_256_digest": string(pattern="^[0-9a-fA-F]{64}$"),
    }
    properties.update({f: string() for f in _METADATA_FIELDS})
    properties.update({f: {"type": "array", "items": {"type": "string"}} for f in _REPEATED_FIELDS})
    properties.update(extra)
    return object_of(properties, (":action", "name", "version", "filetype", *required))


_LEGACY_FORM = _upload_form(
    {
        "content": string(
            "The distribution; its part's filename is the file's name.", contentMediaType=OCTETS
        ),
        "attestations": string(
            "A JSON array of PEP 740 attestations.", contentMediaType="application/json"
        ),
    },
    ("content",),
)
_DIRECT_FORM = _upload_form(
    {"filename": string("The distribution's filename.")}, ("filename", "sha256_digest")
)

_LEGACY_UPLOADED = object_of(
    {"filename": string(), "sha256": string(pattern=HEX64), "created": {"type": "boolean"}},
    ("filename",),
)
_DIRECT_RESERVED = object_of(
    {
        "upload_url": {
            "type": ["string", "null"],
            "description": "null: the bytes are already stored.",
        },
        "upload_headers": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
    },
    ("upload_url", "upload_headers"),
)
_DIRECT_ALREADY = object_of(
    {"filename": string(), "status": {"const": "already uploaded"}}, ("filename", "status")
)
_DIRECT_FINALIZED = object_of({"filename": string(), "created": {"type": "boolean"}}, ("filename",))

_SIMPLE_META = object_of(
    {"api-version": string(), "_last-serial": {"type": "integer"}}, ("api-version",)
)
_SIMPLE_LIST = object_of(
    {
        "meta": ref("SimpleMeta"),
        "projects": {"type": "array", "items": object_of({"name": string()}, ("name",))},
    },
    ("meta", "projects"),
)
_SIMPLE_FILE = object_of(
    {
        "filename": string(),
        "url": string(format="uri-reference"),
        "hashes": {"type": "object", "additionalProperties": {"type": "string"}},
        "requires-python": {"type": ["string", "null"]},
        "size": {"type": "integer"},
        "upload-time": string(format="date-time"),
        "yanked": {"type": ["boolean", "string"]},
        "core-metadata": {"oneOf": [{"type": "boolean"}, {"type": "object"}]},
        "dist-info-metadata": {"oneOf": [{"type": "boolean"}, {"type": "object"}]},
        "provenance": {"type": ["string", "null"]},
    },
    ("filename", "url", "hashes"),
)
_SIMPLE_PROJECT = object_of(
    {
        "meta": ref("SimpleMeta"),
        "name": string(),
        "versions": {"type": "array", "items": {"type": "string"}},
        "files": {"type": "array", "items": ref("SimpleFile")},
        "namespaces": {"type": "array", "items": ref("ProjectNamespace")},
    },
    ("meta", "name", "files"),
)
_PYPI_JSON = object_of(
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
    "ProblemError": object_of({"source": string(), "message": string()}, ("source", "message")),
    "Problem": _PROBLEM,
    "Upload2Problem": _UPLOAD2_PROBLEM,
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
        "schema": string(pattern="^[0-9a-f]{32}$"),
    },
    "fid": {
        "name": "fid",
        "in": "path",
        "required": True,
        "description": "File-upload session id (128 random bits, hex).",
        "schema": string(pattern="^[0-9a-f]{32}$"),
    },
    "project": {
        "name": "project",
        "in": "path",
        "required": True,
        "description": "A project name; a non-normalized one is redirected (301).",
        "schema": string(),
    },
    "version": {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": string("A PEP 440 version."),
    },
    "key": {
        "name": "key",
        "in": "path",
        "required": True,
        "description": "The storage key the URL was signed for (may contain '/').",
        "schema": string(),
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
    "ETag": {"schema": string()},
}

PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": ref("Problem")}}
UPLOAD2_PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": ref("Upload2Problem")}}

RESPONSES: dict[str, Schema] = {
    "Problem": {"description": "An RFC 9457 problem document.", "content": PROBLEM_CONTENT},
    "Upload2Problem": {
        "description": "An RFC 9457 problem document with PEP 694's `meta` and `errors`.",
        "content": UPLOAD2_PROBLEM_CONTENT,
    },
    "Redirect": {
        "description": "Moved to the normalized URL (relative Location, query kept).",
        "headers": {"Location": {"schema": string(format="uri-reference")}},
    },
}

# Why each status is answered, per family of endpoints (the problem's `type` says exactly).
WHY = {
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
