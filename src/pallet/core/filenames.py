"""Distribution filenames: the first gate of every upload, checked before any byte is stored.

Under the default rules only wheels and PEP 625 sdists (``.tar.gz``) are accepted, with the
project part exactly the normalised name with underscores, as the wheel and sdist specifications
(and PyPI) require; the import rules also take the names and ``.zip`` sdists of older tools.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from packaging.tags import Tag
from packaging.utils import (
    BuildTag,
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from pallet.core.problems import Problem
from pallet.core.rules import MAX_PYTHON_TAGS, PYPI, UploadRules

MAX_FILENAME = 255
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")
_ARCH = r"[a-z0-9_]+"
_LEGACY_MANYLINUX = r"x86_64|i686|aarch64|armv7l|ppc64|ppc64le|s390x"
_MACOS_ARCH = r"x86_64|arm64|universal2|intel|i386|ppc|ppc64|fat|fat3|fat32|fat64|universal"
# Every platform an installer can match; anything else is a typo or an attack on a path.
_PLATFORMS = re.compile(
    "|".join(
        f"(?:{p})"
        for p in (
            r"any|win32|win_amd64|win_arm64|win_ia64",
            r"manylinux1_(?:x86_64|i686)",
            r"manylinux2010_(?:x86_64|i686)",
            rf"manylinux2014_(?:{_LEGACY_MANYLINUX})",
            rf"(?:many|musl)linux_\d+_\d+_{_ARCH}",
            rf"macosx_\d+_\d+_(?:{_MACOS_ARCH})",
            rf"linux_{_ARCH}",  # not on PyPI, but private indexes host in-house builds
            rf"ios_\d+_\d+_{_ARCH}",
            rf"android_\d+_{_ARCH}",
            r"pyodide_\d+_\d+_wasm32",
            r"emscripten_\d+_\d+_\d+_wasm32",
        )
    )
)


@dataclass(frozen=True)
class DistFilename:
    """What a filename promises; the archive's own metadata must later keep that promise."""

    filename: str
    project: str  # normalised
    version: Version
    packagetype: Literal["bdist_wheel", "sdist"]
    python_version: str  # wheel: python tags joined by "."; sdist: "source"
    tags: frozenset[Tag] = frozenset()
    build: BuildTag = ()

    @property
    def is_zip(self) -> bool:
        """Wheels and ``.zip`` sdists are zip archives; the other sdists are gzipped tars."""
        return self.filename.endswith((".whl", ".zip"))


def invalid(detail: str) -> Problem:
    """One slug for every filename failure: the client must rename, whatever the reason."""
    return Problem(400, "invalid-filename", "Invalid distribution filename", detail)


def not_pep440(filename: str, version: str) -> Problem:
    return Problem(
        400,
        "invalid-version",
        "Not a PEP 440 version",
        f"{version!r} in {filename!r} is not a PEP 440 version: pip and uv skip such files, so "
        "no installer could use it here. Rebuild it with a valid version.",
    )


def parse_dist_filename(filename: str, rules: UploadRules = PYPI) -> DistFilename:
    """Parse and police a filename before anything is stored under it (it becomes a URL path)."""
    if not filename:
        raise invalid("The filename is empty.")
    if len(filename) > MAX_FILENAME:
        raise invalid(f"Filenames are limited to {MAX_FILENAME} characters.")
    if "/" in filename or "\\" in filename:
        raise invalid("Filenames may not contain '/' or '\\'.")
    if not _PRINTABLE.match(filename):
        raise invalid("Filenames may contain only printable ASCII without spaces or controls.")
    if filename.startswith("."):
        raise invalid("Filenames may not start with a dot.")
    if filename.endswith(".whl"):
        return _wheel(filename, rules)
    if filename.endswith(rules.sdist_suffixes):
        return _sdist(filename, rules)
    others = ".zip sdists (import rules only), " if ".zip" not in rules.sdist_suffixes else ""
    raise invalid(
        f"{filename!r} is not a wheel (.whl) or a source distribution "
        f"({', '.join(rules.sdist_suffixes)}); {others}.egg, .exe, .tar.bz2 and other formats "
        "are not accepted."
    )


def _check_name_part(filename: str, name_part: str, project: str) -> None:
    expected = project.replace("-", "_")
    if name_part != expected:
        raise invalid(
            f"The project part of {filename!r} must be the normalised name {expected!r} "
            f"(not {name_part!r}); older names like this are accepted only by the import "
            "rules ('pallet import', or a token with the import scope)."
        )


def _version_part(filename: str) -> str:
    """The version as written, for the refusal of a non-PEP 440 one."""
    if filename.endswith(".whl"):
        return filename.split("-")[1]
    return filename.removesuffix(".tar.gz").removesuffix(".zip").rpartition("-")[2]


def _wheel(filename: str, rules: UploadRules) -> DistFilename:
    try:
        name, version, build, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, ValueError) as exc:
        if "invalid version" in str(exc):
            raise not_pep440(filename, _version_part(filename)) from None
        raise invalid(f"{filename!r} is not a valid wheel filename: {exc}") from None
    if rules.normalized_filenames:
        _check_name_part(filename, filename.split("-", 1)[0], name)
    bad = sorted({t.platform for t in tags if not _PLATFORMS.fullmatch(t.platform)})
    if bad:
        raise invalid(
            f"Unknown platform tag(s) {', '.join(bad)}; use a tag installers recognise (any, "
            "win_*, manylinux*, musllinux_*, macosx_*, linux_*, ios_*, android_*, pyodide_*, "
            "emscripten_*)."
        )
    pythons = []
    for tag in filename[:-4].split("-")[-3].split("."):
        if tag not in pythons:
            pythons.append(tag)
    if len(".".join(pythons)) > MAX_PYTHON_TAGS:
        raise invalid(f"The Python tags of {filename!r} are longer than {MAX_PYTHON_TAGS} characters.")
    return DistFilename(
        filename, name, version, "bdist_wheel", ".".join(pythons), frozenset(tags), build
    )


def _sdist(filename: str, rules: UploadRules) -> DistFilename:
    stem = filename.removesuffix(".tar.gz").removesuffix(".zip")
    try:
        name, version = parse_sdist_filename(filename)
    except (InvalidSdistFilename, ValueError) as exc:
        if "invalid version" in str(exc):
            raise not_pep440(filename, _version_part(filename)) from None
        raise invalid(f"{filename!r} is not a valid sdist filename: {exc}") from None
    project = canonicalize_name(name)
    if rules.normalized_filenames:
        name_part, _, version_part = stem.rpartition("-")
        _check_name_part(filename, name_part, project)
        if version_part != str(version):
            raise invalid(
                f"PEP 625: the version in {filename!r} must be written {str(version)!r} "
                f"(not {version_part!r}); older spellings are accepted only by the import rules."
            )
    return DistFilename(filename, project, version, "sdist", "source")
