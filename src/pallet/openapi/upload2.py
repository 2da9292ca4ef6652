"""The OpenAPI document's Upload 2.0 part (PEP 694): its sessions' schemas and its paths."""

from __future__ import annotations

from pallet.core.upload2 import MAX_BODY, MEDIA_TYPE
from pallet.openapi.operations import (
    empty,
    header,
    json_response,
    operation,
    problems,
)
from pallet.openapi.schemas import (
    OCTETS,
    RFC3339,
    UPLOAD2_PROBLEM_CONTENT,
    URL,
    Schema,
    object_of,
    ref,
    string,
)

_SESSION_STATUS = {"enum": ["open", "processing", "published", "error", "canceled"]}
_FILE_STATUS = {"enum": ["pending", "processing", "completed", "error", "canceled"]}

_SESSION = object_of(
    {
        "meta": ref("Meta"),
        "links": object_of(
            {k: URL for k in ("session", "upload", "publish", "extend", "stage")},
            ("session", "upload", "publish"),
        ),
        "mechanisms": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "session-token": string("Builds the stage URL; 192 random bits."),
        "expires-at": RFC3339,
        "status": _SESSION_STATUS,
        "files": {"type": "object", "additionalProperties": ref("FileEntry")},
        "notices": {"type": "array", "items": {"type": "string"}},
    },
    ("meta", "links", "mechanisms", "expires-at", "status", "files"),
)

_FILE_ENTRY = object_of(
    {
        "status": {"enum": ["pending", "processing", "completed", "error"]},
        "link": URL,
        "notices": {"type": "array", "items": {"type": "string"}},
    },
    ("status", "link"),
)

_HTTP_POST_BYTES = object_of(
    {
        "identifier": {"const": "http-post-bytes"},
        "file_url": URL,
        "attestations_url": URL,
    },
    ("identifier", "file_url", "attestations_url"),
)

_PRESIGNED_PUT = object_of(
    {
        "identifier": {"const": "vnd-pallet-presigned-put"},
        "method": {"const": "PUT"},
        "url": URL,
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "expires-at": RFC3339,
    },
    ("identifier",),
)

_MULTIPART = object_of(
    {
        "identifier": {"const": "vnd-pallet-s3multipart-presigned"},
        "upload-id": {"type": ["string", "null"]},
        "part-size": {"type": ["integer", "null"]},
        "parts_url": URL,
        "parts": {
            "type": "array",
            "items": object_of(
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

_FILE_SESSION = object_of(
    {
        "meta": ref("Meta"),
        "links": object_of(
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
                object_of({"identifier": {"type": "string"}}, ("identifier",)),
            ],
        },
    },
    ("meta", "links", "status", "expires-at", "mechanism"),
)

_CREATE_SESSION = object_of(
    {
        "meta": ref("Meta"),
        "name": string("A valid project name; normalized by the server."),
        "version": string("A PEP 440 version."),
    },
    ("meta", "name", "version"),
)

_CREATE_FILE = object_of(
    {
        "meta": ref("Meta"),
        "filename": string("A wheel or sdist filename of this session's name and version."),
        "size": {"type": "integer", "minimum": 1},
        "hashes": {
            "type": "object",
            "description": "hashlib name -> lowercase hex digest; at least one secure algorithm.",
            "additionalProperties": string(pattern="^[0-9a-f]+$"),
            "minProperties": 1,
        },
        "mechanism": string("One of the session's `mechanisms`."),
    },
    ("meta", "filename", "size", "hashes", "mechanism"),
)

_EXTEND = object_of(
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

_ACTION = object_of({"meta": ref("Meta")}, ("meta",))

_ATTESTATIONS = {
    "type": "array",
    "description": "PEP 740 attestation objects (version 1, one in-toto subject: this file).",
    "items": object_of(
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
    "items": object_of(
        {"part-number": {"type": "integer", "minimum": 1}, "etag": {"type": "string"}},
        ("part-number", "etag"),
    ),
}

_STORED_PARTS = {
    "type": "array",
    "items": object_of(
        {
            "part-number": {"type": "integer"},
            "etag": {"type": "string"},
            "size": {"type": "integer"},
        },
        ("part-number", "etag", "size"),
    ),
}

SCHEMAS: dict[str, Schema] = {
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
}


def paths(root: str) -> dict[str, Schema]:
    s = f"{root}sessions/{{sid}}/"
    f = f"{s}files/{{fid}}/"
    u2 = MEDIA_TYPE
    sid, fid = ("sid",), ("sid", "fid")

    def errs(*statuses: int) -> dict[str, Schema]:
        return problems((400, 401, 403, 406, *statuses), upload2=True)

    json_body = (415, 413)
    return {
        root: {
            "post": operation(
                "createSession",
                "Create a publishing session",
                "upload-2.0",
                {
                    "201": json_response(
                        u2, "Session", "Created; Location = links.session.", "Location"
                    ),
                    "409": {
                        "description": "A session for this name-version is open: Location names it.",
                        "headers": header("Location"),
                        "content": UPLOAD2_PROBLEM_CONTENT,
                    },
                    **errs(*json_body),
                },
                body=(u2, "CreateSessionRequest", True),
                description=f"JSON bodies are at most {MAX_BODY} bytes (413 beyond).",
            )
        },
        s: {
            "get": operation(
                "getSession",
                "Publishing session status",
                "upload-2.0",
                {
                    "200": json_response(
                        u2, "Session", "The session (Retry-After while processing).", "Retry-After"
                    ),
                    **errs(404),
                },
                params=sid,
            ),
            "delete": operation(
                "cancelSession",
                "Cancel a publishing session",
                "upload-2.0",
                {"204": empty("Canceled; staged files purged."), **errs(404, 409)},
                params=sid,
            ),
        },
        f"{s}publish": {
            "post": operation(
                "publishSession",
                "Publish every completed file atomically",
                "upload-2.0",
                {
                    "201": json_response(u2, "Session", "Published.", "Location"),
                    "202": json_response(
                        u2, "Session", "Publishing in the background.", "Location", "Retry-After"
                    ),
                    **errs(404, 409, *json_body),
                },
                body=(u2, "ActionRequest", True),
                params=sid,
            )
        },
        f"{s}extend": {
            "post": operation(
                "extendSession",
                "Extend a publishing session",
                "upload-2.0",
                {
                    "200": json_response(u2, "Session", "The current expires-at."),
                    **errs(404, 409, *json_body),
                },
                body=(u2, "ExtendRequest", True),
                params=sid,
            )
        },
        f"{s}files/": {
            "post": operation(
                "createFile",
                "Create a file-upload session",
                "upload-2.0",
                {
                    "202": json_response(
                        u2, "FileSession", "Created; send the bytes.", "Location", "Retry-After"
                    ),
                    **errs(404, 409, 422, *json_body),
                },
                body=(u2, "CreateFileRequest", True),
                params=sid,
            )
        },
        f: {
            "get": operation(
                "getFile",
                "File-upload session status",
                "upload-2.0",
                {
                    "200": json_response(
                        u2, "FileSession", "The file session (fresh signed URLs).", "Retry-After"
                    ),
                    **errs(404),
                },
                params=fid,
            ),
            "delete": operation(
                "deleteFile",
                "Cancel an upload or delete a staged file",
                "upload-2.0",
                {"204": empty("Deleted."), **errs(404, 409)},
                params=fid,
            ),
        },
        f"{f}complete": {
            "post": operation(
                "completeFile",
                "Complete a file upload (verify the bytes)",
                "upload-2.0",
                {
                    "201": json_response(u2, "FileSession", "Completed.", "Location"),
                    "202": json_response(
                        u2, "FileSession", "Verifying in the background.", "Location", "Retry-After"
                    ),
                    **errs(404, 409, *json_body),
                },
                body=(u2, "ActionRequest", True),
                params=fid,
            )
        },
        f"{f}extend": {
            "post": operation(
                "extendFile",
                "Extend a file-upload session",
                "upload-2.0",
                {
                    "200": json_response(u2, "FileSession", "The current expires-at."),
                    **errs(404, 409, *json_body),
                },
                body=(u2, "ExtendRequest", True),
                params=fid,
            )
        },
        f"{f}content": {
            "post": operation(
                "sendBytes",
                "http-post-bytes: send the file",
                "mechanisms",
                {"204": empty("Stored (replaces earlier bytes)."), **errs(404, 409, 413, 415)},
                body=(OCTETS, {"type": "string", "contentMediaType": OCTETS}, True),
                params=fid,
                description="Content-Length must equal the declared size (400 size-mismatch).",
            )
        },
        f"{f}attestations": {
            "post": operation(
                "sendAttestations",
                "http-post-bytes: PEP 740 attestations for the file",
                "mechanisms",
                {"204": empty("Stored."), **errs(404, 409, 413, 415)},
                body=("application/json", "Attestations", True),
                params=fid,
            )
        },
        f"{f}parts": {
            "get": operation(
                "listParts",
                "vnd-pallet-s3multipart-presigned: parts already stored",
                "mechanisms",
                {
                    "200": json_response("application/json", "StoredParts", "Stored parts."),
                    **errs(404),
                },
                params=fid,
            ),
            "post": operation(
                "reportEtags",
                "vnd-pallet-s3multipart-presigned: report part ETags",
                "mechanisms",
                {"204": empty("Recorded; complete checks them."), **errs(404, 409, 413)},
                body=("application/json", "PartEtags", True),
                params=fid,
            ),
        },
    }
