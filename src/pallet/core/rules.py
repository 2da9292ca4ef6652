"""Which files an upload may bring: the two rule sets, as data.

``PYPI`` is what PyPI accepts for a *new* upload today, never stricter: the format rules that
decide whether installers can use a file. ``IMPORT`` is what PyPI has ever served (non-normalised
filenames, ``.zip`` sdists, Metadata-Version 2.0, fields written under an older
Metadata-Version), for mirrors of pinned lockfiles and vendored wheels. Both run every safety
check (archive limits, traversal, links, digests); only the modern-upload rules relax. Each rule
and its reason is listed in docs/validation.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

MiB = 2**20

#: What the index stores (the database columns): longer names, versions, Requires-Python or
#: wheel Python tags are refused with a 400 before they could reach a row.
MAX_NAME = 200
MAX_VERSION = 100
MAX_REQUIRES_PYTHON = 200
MAX_PYTHON_TAGS = 100

#: Metadata versions PyPI takes for new uploads (2.0 was never finalised; PyPI refuses it).
MODERN_METADATA_VERSIONS = frozenset({"1.0", "1.1", "1.2", "2.1", "2.2", "2.3", "2.4", "2.5"})


@dataclass(frozen=True)
class ArchiveLimits:
    """Decompression-bomb limits, calibrated on real wheels (a shared library of zeros can
    compress 200x and be harmless; a gigabyte from a megabyte is not)."""

    max_uncompressed_size: int = 8 * 2**30
    #: Whole archive: refused above this ratio once it expands past ``ratio_floor`` (PyPI: 50).
    max_compression_ratio: float = 50.0
    #: One member: refused above this ratio once it alone expands past ``ratio_floor``.
    max_member_ratio: float = 100.0
    ratio_floor: int = 64 * MiB
    max_members: int = 200_000
    max_metadata_size: int = 4 * MiB


@dataclass(frozen=True)
class UploadRules:
    name: str
    #: The wheel/sdist name part must be the normalised name with underscores, and an sdist's
    #: filename exactly ``{name}-{version}.tar.gz`` (PEP 625).
    normalized_filenames: bool
    sdist_suffixes: tuple[str, ...]
    metadata_versions: frozenset[str]
    #: Fields newer than the declared Metadata-Version, and fields that fail validation, are
    #: left out of the parsed view (the file's own bytes are kept and served unchanged).
    lenient_metadata: bool
    allow_local_versions: bool
    #: PEP 639: every License-File (Metadata 2.4+) must be in the archive.
    check_license_files: bool
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)

    def with_local_versions(self, allowed: bool) -> UploadRules:
        return self if self.allow_local_versions == allowed else replace(self, allow_local_versions=allowed)


PYPI = UploadRules(
    name="pypi",
    normalized_filenames=True,
    sdist_suffixes=(".tar.gz",),
    metadata_versions=MODERN_METADATA_VERSIONS,
    lenient_metadata=False,
    allow_local_versions=False,
    check_license_files=True,
)

IMPORT = UploadRules(
    name="import",
    normalized_filenames=False,
    sdist_suffixes=(".tar.gz", ".zip"),
    metadata_versions=MODERN_METADATA_VERSIONS | {"2.0"},
    lenient_metadata=True,
    allow_local_versions=True,  # mirrors of +cpu/+cu121 builds are what private indexes hold
    check_license_files=False,
)
