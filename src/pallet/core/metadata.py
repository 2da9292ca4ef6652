"""Core metadata (from the file itself) and the legacy upload form (what the client claims).

The file's METADATA/PKG-INFO is the authority; the form must agree with it and with the
filename. Parsing and validation are ``packaging.metadata``'s (metadata 1.0 to 2.5), under the
upload rules in force (``pallet.core.rules``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from packaging.metadata import Metadata, RawMetadata, parse_email
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pallet.core.archives import ArchiveContents
from pallet.core.filenames import DistFilename
from pallet.core.problems import Problem, ProblemError
from pallet.core.rules import (
    MAX_NAME,
    MAX_REQUIRES_PYTHON,
    MAX_VERSION,
    PYPI,
    UploadRules,
)
from pallet.core.untrusted import shorten

_DIGESTS = {
    "md5_digest": ("md5", 32),
    "sha256_digest": ("sha256", 64),
    "blake2_256_digest": ("blake2_256", 64),
}
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_SINGLE = (
    "name",
    "version",
    "filetype",
    "pyversion",
    "metadata_version",
    ":action",
    "protocol_version",
    *_DIGESTS,
)


def _invalid_metadata(errors: list[ProblemError], detail: str) -> Problem:
    return Problem(400, "invalid-metadata", "Invalid core metadata", detail, errors=errors)


_NEWEST = "2.5"  # the newest Metadata-Version packaging validates
_LICENSE_FILE_SPEC = Version("2.4")  # PEP 639


def _errors_of(group: ExceptionGroup, hint: str = "") -> Problem:
    errors = [ProblemError(getattr(exc, "field", "metadata"), str(exc)) for exc in group.exceptions]
    summary = "; ".join(e.message for e in errors[:3]) + ("; ..." if len(errors) > 3 else "")
    return _invalid_metadata(
        errors, f"The distribution's own metadata is invalid ({summary}); fix and rebuild.{hint}"
    )


def parse_core_metadata(raw: bytes, rules: UploadRules = PYPI) -> Metadata:
    """Validate the file's own METADATA / PKG-INFO: it, not the form, is what installers read.

    Under lenient rules a field that is newer than the declared Metadata-Version, or invalid,
    is left out of what Pallet reads (the file itself is stored and served unchanged); only
    the name and version must be sound."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        if not rules.lenient_metadata:
            raise _invalid_metadata([], "The metadata file is not UTF-8; rebuild it.") from None
        text = raw.decode("latin-1")  # what old distutils wrote; every byte decodes
    # Fields no specification defines are ignored, as PyPI does when uv uploads (it sends only
    # the fields it knows); a malformed or repeated Name or Version is missing, hence refused.
    fields, _unparsed = parse_email(text)
    declared = fields.get("metadata_version")
    if declared not in rules.metadata_versions:
        accepted = ", ".join(sorted(rules.metadata_versions))
        raise _invalid_metadata(
            [ProblemError("metadata-version", f"{declared!r} is not accepted")],
            f"Metadata-Version {declared!r} is not accepted for new uploads (accepted: "
            f"{accepted}).{_IMPORT_HINT if declared == '2.0' else ''}",
        )
    if declared == "2.0":
        fields["metadata_version"] = "2.1"  # the draft that became 2.1 (PEP 566), never final
    if "license_files" in fields and Version(fields["metadata_version"]) < _LICENSE_FILE_SPEC:
        # setuptools wrote License-File under 2.1 with its own meaning, years before PEP 639;
        # twine drops these before upload, so PyPI never judges them, and neither does Pallet.
        del fields["license_files"]
    try:
        return Metadata.from_raw(fields, validate=True)
    except ExceptionGroup as group:
        if not rules.lenient_metadata:
            raise _errors_of(group, _IMPORT_HINT if _only_too_new(group) else "") from None
    except ValueError:
        raise _unconvertible_version(fields) from None
    return _lenient(fields)


def _unconvertible_version(fields: RawMetadata) -> Problem:
    """``Version`` turns each release segment into an ``int``; past Python's digit limit that is
    a plain ``ValueError`` (not ``InvalidVersion``, so packaging does not collect it)."""
    detail = f"Version {shorten(str(fields.get('version', '')))} is not a valid version."
    return _invalid_metadata([ProblemError("version", detail)], detail)


_IMPORT_HINT = " Older files like this are accepted by the import rules ('pallet import')."


def _only_too_new(group: ExceptionGroup) -> bool:
    return all("introduced in metadata version" in str(exc) for exc in group.exceptions)


def _lenient(fields: RawMetadata) -> Metadata:
    """Keep each field that is valid on its own, whatever Metadata-Version it needs."""
    base: RawMetadata = {"metadata_version": _NEWEST}
    for key in ("name", "version"):
        if key in fields:
            base[key] = fields[key]
    try:
        Metadata.from_raw(base)
    except ExceptionGroup as group:
        raise _errors_of(group) from None
    except ValueError:
        raise _unconvertible_version(fields) from None
    # Every key below comes from ``fields``, so each of these dicts is a RawMetadata too.
    kept = dict(fields)
    for key, value in fields.items():
        if key in ("metadata_version", "name", "version"):
            continue
        try:
            Metadata.from_raw(cast(RawMetadata, {**base, key: value}))
        except ExceptionGroup:
            del kept[key]
    if kept.get("license") and kept.get("license_expression"):
        del kept["license"]
    return Metadata.from_raw(cast(RawMetadata, kept), validate=False)


def check_file_matches(meta: Metadata, dist: DistFilename, rules: UploadRules = PYPI) -> None:
    """The filename decides where a file is listed, so it must say what the metadata says."""
    too_long = [
        ProblemError(field, f"is longer than {limit} characters")
        for field, value, limit in (
            ("name", meta.name, MAX_NAME),
            ("version", str(meta.version), MAX_VERSION),
            ("requires-python", str(meta.requires_python or ""), MAX_REQUIRES_PYTHON),
        )
        if len(value) > limit
    ]
    if too_long:
        raise _invalid_metadata(too_long, "; ".join(f"{e.source} {e.message}" for e in too_long) + ".")
    if canonicalize_name(meta.name) != dist.project:
        raise Problem(
            400,
            "name-mismatch",
            "Project name mismatch",
            f"The file's metadata names {meta.name!r} but the filename is for {dist.project!r}.",
        )
    if meta.version != dist.version:
        raise Problem(
            400,
            "version-mismatch",
            "Version mismatch",
            f"The file's metadata says version {meta.version} but the filename says "
            f"{dist.version}.",
        )
    if meta.version.local is not None and not rules.allow_local_versions:
        raise Problem(
            400,
            "local-version-not-allowed",
            "Local versions not allowed",
            f"{meta.version} has a local part (+{meta.version.local}); this index does not "
            "accept local versions (PALLET_ALLOW_LOCAL_VERSIONS).",
        )
    if meta.license and meta.license_expression:
        raise _invalid_metadata(
            [ProblemError("license", "set together with license-expression")],
            "License and License-Expression are mutually exclusive (PEP 639).",
        )


def check_license_files(meta: Metadata, contents: ArchiveContents) -> None:
    """PEP 639: each License-File names a file the archive really holds (as PyPI checks)."""
    missing = [path for path in meta.license_files or () if not contents.has_license_file(path)]
    if missing:
        raise _invalid_metadata(
            [ProblemError("license-file", f"{path!r} is not in the archive") for path in missing],
            f"License-File {missing[0]!r} is not in the archive (wheels keep license files in "
            f"{contents.root}/licenses/, sdists under their top directory).",
        )


@dataclass(frozen=True)
class UploadForm:
    """The legacy form's claims, checked only for shape here; the file is the authority."""

    name: str
    version: str
    filetype: str
    pyversion: str | None
    metadata_version: str | None
    digests: dict[str, str]
    fields: Mapping[str, list[str]] = field(repr=False, default_factory=dict)


def _form_error(detail: str, source: str) -> Problem:
    return Problem(
        400, "invalid-form", "Invalid upload form", detail, errors=[ProblemError(source, detail)]
    )


def parse_upload_form(fields: Mapping[str, list[str]]) -> UploadForm:
    """Read the twine/uv form; a field sent twice is refused rather than guessed at."""
    for key in _SINGLE:
        if len(fields.get(key, [])) > 1:
            raise _form_error(f"Field {key!r} was sent more than once.", key)

    def one(key: str) -> str | None:
        values = fields.get(key)
        return values[0] if values else None

    if one(":action") != "file_upload":
        raise _form_error("':action' must be 'file_upload'.", ":action")
    if one("protocol_version") not in (None, "1"):
        raise _form_error("'protocol_version' must be 1.", "protocol_version")
    required = {}
    for key in ("name", "version", "filetype"):
        value = one(key)
        if not value:
            raise _form_error(f"Field {key!r} is required.", key)
        required[key] = value
    if required["filetype"] not in ("bdist_wheel", "sdist"):
        raise _form_error("'filetype' must be 'bdist_wheel' or 'sdist'.", "filetype")
    digests = {}
    for key, (algo, length) in _DIGESTS.items():
        value = one(key)
        if value is None or value == "":
            continue
        if len(value) != length or not _HEX.match(value):
            raise Problem(
                400,
                "invalid-digest",
                "Invalid digest",
                f"{key} must be {length} hexadecimal characters.",
                errors=[ProblemError(key, "malformed")],
            )
        digests[algo] = value.lower()
    return UploadForm(
        required["name"],
        required["version"],
        required["filetype"],
        one("pyversion"),
        one("metadata_version"),
        digests,
        fields,
    )


def check_form_names_file(form: UploadForm, dist: DistFilename) -> None:
    """The form's project must be the filename's (checked before any byte is looked at)."""
    if canonicalize_name(form.name) != dist.project:
        raise Problem(
            400,
            "name-mismatch",
            "Project name mismatch",
            f"The form names {form.name!r} but the file is for {dist.project!r}.",
        )


def check_form_matches(form: UploadForm, meta: Metadata, dist: DistFilename) -> None:
    """A client that claims another project or version is confused; say so instead of guessing."""
    check_form_names_file(form, dist)
    try:
        version = Version(form.version)
    except InvalidVersion:
        raise _form_error(f"{form.version!r} is not a valid version.", "version") from None
    if version != dist.version:
        raise Problem(
            400,
            "version-mismatch",
            "Version mismatch",
            f"The form says version {form.version} but the file is {dist.version}.",
        )
    if form.filetype != dist.packagetype:
        raise _form_error(
            f"filetype {form.filetype!r} does not match {dist.filename!r}.", "filetype"
        )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def project_info(meta: Metadata) -> dict[str, Any]:
    """The JSON API's ``info`` keys, JSON-serialisable, stored once so reads never re-parse."""
    return {
        "name": meta.name,
        "version": str(meta.version),
        "summary": meta.summary,
        "description": meta.description,
        "description_content_type": meta.description_content_type,
        "author": meta.author,
        "author_email": meta.author_email,
        "maintainer": meta.maintainer,
        "maintainer_email": meta.maintainer_email,
        "license": meta.license,
        "license_expression": meta.license_expression,
        "license_files": meta.license_files,
        "keywords": ",".join(meta.keywords) if meta.keywords else None,
        "classifiers": list(meta.classifiers or []),
        "platform": ",".join(meta.platforms) if meta.platforms else None,
        "home_page": meta.home_page,
        "download_url": meta.download_url,
        "project_urls": dict(meta.project_urls or {}),
        "requires_dist": [str(r) for r in meta.requires_dist] if meta.requires_dist else None,
        "requires_python": _str(meta.requires_python),
        "provides_extra": [str(e) for e in meta.provides_extra] if meta.provides_extra else None,
    }
