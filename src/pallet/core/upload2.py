"""PEP 694 wire rules, pure: request validation and the JSON shapes of both session kinds.

Kept apart from the endpoints so every rule (media type, ``meta.api-version``, hash algorithm
names, RFC 3339 timestamps) is testable without a server.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from packaging.utils import InvalidName, canonicalize_name
from packaging.version import Version

from pallet.core.problems import Problem, ProblemError
from pallet.core.rules import MAX_NAME, MAX_VERSION
from pallet.core.untrusted import UPLOAD2, load_json, parse_version, shorten

MEDIA_TYPE = "application/vnd.pypi.upload.v2+json"
API_VERSION = "2.0"
META = {"api-version": API_VERSION}
MAX_BODY = 64 * 1024
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_HEX = re.compile(r"^[0-9a-f]+$")
#: Secure algorithms from hashlib.algorithms_guaranteed (md5 and sha1 do not count).
SECURE_ALGORITHMS = (
    frozenset(hashlib.algorithms_guaranteed)
    - {"md5", "sha1"}
    - {
        "shake_128",
        "shake_256",
    }
)


def rfc3339(ts: datetime) -> str:
    """Whole seconds, UTC, literal Z, as PEP 694 requires for ``expires-at``."""
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def invalid(
    detail: str, *errors: ProblemError, status: int = 400, slug: str = "invalid-request"
) -> Problem:
    return Problem(status, slug, "Invalid request", detail, errors=list(errors))


def check_content_type(content_type: str | None) -> None:
    media = (content_type or "").split(";")[0].strip().lower()
    if media != MEDIA_TYPE:
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"Upload 2.0 requests must be sent as {MEDIA_TYPE}, not {media or 'nothing'}.",
        )


def accepts_v2(accept: str | None) -> bool:
    """Server-driven negotiation: missing Accept means */*; otherwise some entry must match."""
    if not accept or not accept.strip():
        return True
    for item in accept.split(","):
        media, *params = (p.strip().lower() for p in item.split(";"))
        q = 1.0
        for p in params:
            key, _, value = p.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and media in (MEDIA_TYPE, "application/*", "*/*", "application/json"):
            return True
    return False


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request, with ``meta.api-version`` checked against the media type."""
    if len(raw) > MAX_BODY:
        raise Problem(
            413,
            "body-too-large",
            "Request body too large",
            f"Upload 2.0 JSON bodies are limited to {MAX_BODY} bytes.",
        )
    try:
        body = load_json(raw, UPLOAD2)  # bounded depth, numbers and strings (or a 400)
    except ValueError as exc:  # UnicodeDecodeError included
        raise invalid(f"The body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise invalid("The body must be a JSON object.")
    meta = body.get("meta")
    if not isinstance(meta, dict) or not isinstance(meta.get("api-version"), str):
        raise invalid(
            "'meta' with an 'api-version' string is required.",
            ProblemError("meta.api-version", "missing"),
        )
    version = meta["api-version"]
    major, _, minor = version.partition(".")
    if major != "2":
        raise Problem(
            400,
            "unsupported-api-version",
            "Unsupported API version",
            f"meta.api-version {version!r} does not match the media type's major version 2.",
            errors=[ProblemError("meta.api-version", f"expected 2.x, got {version!r}")],
        )
    if not minor.isdigit():
        raise invalid(f"meta.api-version {version!r} is not MAJOR.MINOR.")
    return body


def parse_create_session(body: Mapping[str, Any]) -> tuple[str, str, Version]:
    """(display name, normalized name, version) of a publishing-session request."""
    name, version = body.get("name"), body.get("version")
    errors = []
    if not isinstance(name, str) or not _NAME.match(name):
        errors.append(ProblemError("name", "must be a valid project name"))
    if not isinstance(version, str):
        errors.append(ProblemError("version", "must be a string"))
        parsed = None
    else:
        parsed = parse_version(version)
        if parsed is None:
            errors.append(ProblemError("version", f"{shorten(version)} is not a valid version"))
    if isinstance(name, str) and len(name) > MAX_NAME:
        errors.append(ProblemError("name", f"is longer than {MAX_NAME} characters"))
    if parsed is not None and max(len(str(version)), len(str(parsed))) > MAX_VERSION:
        errors.append(ProblemError("version", f"is longer than {MAX_VERSION} characters"))
    if errors or parsed is None or not isinstance(name, str):  # a bad name is in errors too
        raise invalid("The session needs a valid 'name' and 'version'.", *errors)
    try:
        normalized = canonicalize_name(name, validate=True)
    except InvalidName:  # pragma: no cover - the regex above already refuses these
        raise invalid("invalid name") from None
    return name, normalized, parsed


def parse_hashes(value: Any) -> dict[str, str]:
    """PEP 694 ``hashes``: hashlib names without parameters, lowercase hex, at least one secure."""
    if not isinstance(value, dict) or not value:
        raise invalid(
            "'hashes' must be an object of algorithm -> hex digest.",
            ProblemError("hashes", "missing or empty"),
        )
    out: dict[str, str] = {}
    errors = []
    for algo, digest in value.items():
        try:
            expected_len = hashlib.new(algo).digest_size * 2
        except (ValueError, TypeError):
            errors.append(ProblemError(f"hashes.{algo}", "not a hashlib algorithm"))
            continue
        if algo.startswith("shake_") or expected_len == 0:
            errors.append(ProblemError(f"hashes.{algo}", "needs parameters; not allowed"))
            continue
        if not isinstance(digest, str) or len(digest) != expected_len or not _HEX.match(digest):
            errors.append(ProblemError(f"hashes.{algo}", f"must be {expected_len} lowercase hex"))
            continue
        out[algo] = digest
    if errors:
        raise invalid("Some hashes are invalid.", *errors)
    if not SECURE_ALGORITHMS & out.keys():
        raise invalid(
            "At least one secure algorithm from hashlib.algorithms_guaranteed is required "
            "(sha256 recommended).",
            ProblemError("hashes", "no secure algorithm"),
        )
    return out


def parse_create_file(
    body: Mapping[str, Any], max_size: int
) -> tuple[str, int, dict[str, str], str]:
    """(filename, size, hashes, mechanism) of a file-upload-session request."""
    filename, size, mechanism = body.get("filename"), body.get("size"), body.get("mechanism")
    if not isinstance(filename, str) or not filename:
        raise invalid("'filename' is required.", ProblemError("filename", "missing"))
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise invalid("'size' must be a positive integer.", ProblemError("size", repr(size)))
    if size > max_size:
        raise Problem(
            409,
            "file-too-large",
            "File too large",
            f"This index accepts files of at most {max_size} bytes; this one declares {size}.",
        )
    if not isinstance(mechanism, str) or not mechanism:
        raise invalid("'mechanism' is required.", ProblemError("mechanism", "missing"))
    return filename, size, parse_hashes(body.get("hashes")), mechanism


def parse_extend(body: Mapping[str, Any]) -> int:
    value = body.get("extend-for")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid(
            "'extend-for' must be a non-negative integer number of seconds.",
            ProblemError("extend-for", repr(value)),
        )
    return value
