"""Turn a spooled file into a *verified staged file*: every upload path (legacy form, Upload 2.0,
direct) calls ``verify_file`` before handing the file to ``publish``, so the rules live once.

Nothing the client said is trusted: claimed digests are compared with the bytes (in constant
time), and name/version come from the file's own METADATA / PKG-INFO.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, BinaryIO

from packaging.metadata import Metadata

from pallet.auth.tokens import Principal
from pallet.config import Settings
from pallet.core.archives import read_dist_contents
from pallet.core.filenames import DistFilename, parse_dist_filename
from pallet.core.metadata import (
    check_file_matches,
    check_license_files,
    parse_core_metadata,
    project_info,
)
from pallet.core.problems import Problem, ProblemError, bad_request
from pallet.core.rules import IMPORT, PYPI, UploadRules
from pallet.upload.spool import SpooledFile


@dataclass
class VerifiedFile:
    spooled: SpooledFile
    dist: DistFilename
    metadata: Metadata
    metadata_bytes: bytes
    info: dict[str, Any]
    attestations: list | None = None
    publisher: dict | None = None  # of the attestations (PEP 740)

    @property
    def filename(self) -> str:
        return self.spooled.filename

    @property
    def serve_metadata(self) -> bool:
        """PEP 658: wheels' METADATA is served next to the file (sdist PKG-INFO may be dynamic)."""
        return self.dist.packagetype == "bdist_wheel"

    @property
    def metadata_sha256(self) -> str | None:
        return hashlib.sha256(self.metadata_bytes).hexdigest() if self.serve_metadata else None


def check_digests(claimed: dict[str, str], actual: dict[str, str]) -> None:
    unchecked = sorted(set(claimed) - set(actual))
    if unchecked:
        raise bad_request(
            "digest-after-file",
            "Digest sent after the file",
            f"{', '.join(unchecked)} digest fields must come before the 'content' part.",
        )
    wrong = [
        ProblemError(
            f"{algo}_digest", f"expected {value}, the uploaded bytes hash to {actual[algo]}"
        )
        for algo, value in claimed.items()
        if not hmac.compare_digest(value.lower(), actual[algo])
    ]
    if wrong:
        raise bad_request(
            "digest-mismatch",
            "Digest mismatch",
            "The file's bytes do not match the digest sent with it; the upload was corrupted "
            "or the wrong file was sent.",
            errors=wrong,
        )


def upload_rules(principal: Principal | None, settings: Settings) -> UploadRules:
    """A token with the ``import`` scope uploads under the import rules; everything else under
    PyPI's rules for new uploads (plus the index's local-version setting)."""
    if principal is not None and principal.scope == "import":
        return IMPORT
    return PYPI.with_local_versions(settings.allow_local_versions)


def rules_named(name: str | None, settings: Settings) -> UploadRules:
    """The rules ``upload_rules`` chose, from their recorded name (deferred verification)."""
    return IMPORT if name == IMPORT.name else PYPI.with_local_versions(settings.allow_local_versions)


def verify_file(
    spooled: SpooledFile,
    *,
    claimed_digests: dict[str, str],
    rules: UploadRules,
    dist: DistFilename | None = None,
    source: BinaryIO | None = None,
) -> VerifiedFile:
    """``source`` replaces ``spooled.path`` as what is read (a remote object's reader)."""
    dist = dist or parse_dist_filename(spooled.filename, rules)
    check_digests(claimed_digests, spooled.digests.as_dict())
    if spooled.digests.size == 0:
        raise bad_request("empty-file", "Empty file", "Zero-byte distributions are not accepted.")
    contents = read_dist_contents(
        source or spooled.path, dist, rules.limits, size=spooled.digests.size
    )
    metadata = parse_core_metadata(contents.metadata, rules)
    check_file_matches(metadata, dist, rules)
    if rules.check_license_files:
        check_license_files(metadata, contents)
    return VerifiedFile(spooled, dist, metadata, contents.metadata, project_info(metadata))


def forbidden(project: str) -> Problem:
    return Problem(
        403,
        "forbidden",
        "Not allowed to upload",
        f"The token used may not upload to project {project!r}.",
    )
