"""Distribution filenames: the first gate of every upload, checked before any byte is stored.

Only wheels and PEP 625 sdists (``.tar.gz``) are accepted, with the project part exactly the
normalised name with underscores, as the wheel and sdist specifications require.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from pallet.core.problems import Problem

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
    build: tuple = ()

    @property
    def stem(self) -> str:
        """``{name}-{version}`` as written in the filename (the sdist's top directory)."""
        return (
            self.filename.removesuffix(".tar.gz")
            if self.packagetype == "sdist"
            else ("-".join(self.filename.split("-")[:2]))
        )


def invalid(detail: str) -> Problem:
    """One slug for every filename failure: the client must rename, whatever the reason."""
    return Problem(400, "invalid-filename", "Invalid distribution filename", detail)


def parse_dist_filename(filename: str) -> DistFilename:
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
        return _wheel(filename)
    if filename.endswith(".tar.gz"):
        return _sdist(filename)
    raise invalid(
        f"{filename!r} is not a wheel (.whl) or a source distribution (.tar.gz); "
        ".zip, .egg, .exe, .tar.bz2 and other formats are not accepted."
    )


def _check_name_part(filename: str, name_part: str, project: str) -> None:
    expected = project.replace("-", "_")
    if name_part != expected:
        raise invalid(
            f"The project part of {filename!r} must be the normalised name {expected!r} "
            f"(not {name_part!r})."
        )


def _wheel(filename: str) -> DistFilename:
    try:
        name, version, build, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, ValueError) as exc:
        raise invalid(f"{filename!r} is not a valid wheel filename: {exc}") from None
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
    return DistFilename(
        filename, name, version, "bdist_wheel", ".".join(pythons), frozenset(tags), build
    )


def _sdist(filename: str) -> DistFilename:
    try:
        name, version = parse_sdist_filename(filename)
    except (InvalidSdistFilename, ValueError) as exc:
        raise invalid(f"{filename!r} is not a valid sdist filename: {exc}") from None
    stem = filename.removesuffix(".tar.gz")
    name_part, _, _version_part = stem.rpartition("-")
    _check_name_part(filename, name_part, canonicalize_name(name))
    return DistFilename(filename, canonicalize_name(name), version, "sdist", "source")
