"""PEP 740 attestations sent with an upload: structural checks binding them to the file.

Pallet checks that each attestation is a version-1 object whose in-toto statement names this
file and its sha256. The signatures are verified against the publisher's identity when a
trusted publisher sends them (pallet.upload.provenance, which needs the Sigstore trust root).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Protocol

from pallet.core.problems import Problem, ProblemError, bad_request
from pallet.core.untrusted import ATTESTATIONS, load_json

MAX_ATTESTATIONS = 16


class _HasSha256(Protocol):
    @property
    def sha256(self) -> str: ...  # read-only: upload.spool.Digests derives it


def invalid_attestations(message: str, source: str = "attestations") -> Problem:
    return bad_request(
        "invalid-attestations",
        "Invalid attestations",
        "Attestations must be a JSON array of PEP 740 attestation objects for this file.",
        errors=[ProblemError(source, message)],
    )


def parse_attestations(raw: str, filename: str, digests: _HasSha256) -> list[dict[str, Any]]:
    try:
        value = load_json(raw, ATTESTATIONS)  # bounded: a 400 json-limit-exceeded problem
    except ValueError as exc:
        raise invalid_attestations(f"not JSON: {exc}") from None
    if not isinstance(value, list) or not value or len(value) > MAX_ATTESTATIONS:
        raise invalid_attestations(
            f"expected a non-empty array of at most {MAX_ATTESTATIONS} objects"
        )
    for i, att in enumerate(value):
        _check_one(att, filename, digests.sha256, f"attestations/{i}")
    return value


def _check_one(att: Any, filename: str, sha256: str, source: str) -> None:
    if not isinstance(att, dict) or att.get("version") != 1:
        raise invalid_attestations("each attestation must be an object with version 1", source)
    envelope = att.get("envelope")
    if not isinstance(att.get("verification_material"), dict) or not isinstance(envelope, dict):
        raise invalid_attestations("missing verification_material or envelope", source)
    try:
        statement = load_json(
            base64.b64decode(envelope.get("statement", ""), validate=True), ATTESTATIONS
        )
    except (binascii.Error, ValueError, TypeError):
        raise invalid_attestations(
            "envelope.statement is not base64-encoded JSON", source
        ) from None
    subjects = statement.get("subject") if isinstance(statement, dict) else None
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise invalid_attestations("the statement must have exactly one subject", source)
    subject = subjects[0]
    if subject.get("name") != filename:
        raise invalid_attestations(
            f"subject name {subject.get('name')!r} is not {filename!r}", source
        )
    digest = subject.get("digest")
    if not isinstance(digest, dict) or digest.get("sha256") != sha256:
        raise invalid_attestations("subject sha256 does not match the uploaded file", source)
