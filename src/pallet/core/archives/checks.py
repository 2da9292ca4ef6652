"""What every archive format shares: the problems it raises, names an unpacker must not write,
and the decompression-bomb arithmetic (see ``ArchiveLimits`` for the calibration)."""

from __future__ import annotations

import re
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from functools import partial

from pallet.core.problems import Problem
from pallet.core.rules import ArchiveLimits

MiB = 2**20
DRIVE = re.compile(r"^[A-Za-z]:")
# Everything a malformed archive can make the standard library raise. RuntimeError: encrypted
# members, and RecursionError from chained pax headers.
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, zlib.error)
_IO_ERRORS = (struct.error, EOFError, OSError, ValueError, LookupError, OverflowError)
FORMAT_ERRORS = (*_ZIP_ERRORS, *_IO_ERRORS, NotImplementedError, RuntimeError)


@dataclass(frozen=True)
class ArchiveContents:
    """The metadata file's bytes, and where the archive keeps things (for PEP 639's
    License-File check): ``root`` is the .dist-info directory or the sdist's top directory."""

    metadata: bytes
    root: str
    members: frozenset[str]

    def has_license_file(self, path: str) -> bool:
        if self.root.endswith(".dist-info"):
            return f"{self.root}/licenses/{path}" in self.members
        return f"{self.root}/{path}" in self.members


def _problem(slug: str, title: str, detail: str) -> Problem:
    return Problem(400, slug, title, detail)


bomb = partial(_problem, "zip-bomb", "Archive rejected as a decompression bomb")
corrupt = partial(_problem, "invalid-archive", "Invalid archive")
unsafe = partial(_problem, "unsafe-archive", "Unsafe archive member")
bad_wheel = partial(_problem, "invalid-wheel", "Invalid wheel")
bad_sdist = partial(_problem, "invalid-sdist", "Invalid sdist")


def too_big(what: str, limits: ArchiveLimits) -> Problem:
    detail = f"{what} may be at most {limits.max_metadata_size} bytes."
    return _problem("invalid-metadata", "Metadata too large", detail)


def is_unsafe_name(name: str) -> bool:
    """Names an unpacker could write outside its target, or that differ between systems."""
    if not name or "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return True
    if name.startswith("/") or DRIVE.match(name):
        return True
    return ".." in name.split("/")


def check_total(total: int, compressed: int, limits: ArchiveLimits, what: str = "It") -> None:
    """The whole archive: an absolute ceiling, and a ratio once it is big enough to matter."""
    if total > limits.max_uncompressed_size:
        raise bomb(f"{what} expands to more than {limits.max_uncompressed_size} bytes.")
    if total > limits.ratio_floor and total > limits.max_compression_ratio * max(compressed, 1):
        raise bomb(
            f"{what} expands more than {limits.max_compression_ratio:g} times "
            f"({total} bytes from {compressed})."
        )


def check_member(name: str, size: int, compressed: int, limits: ArchiveLimits) -> None:
    """One member: a small file of zeros may compress 200 times and harm nobody; a member that
    alone expands past the floor at an absurd ratio is the bomb the whole-archive sum hides."""
    if size > limits.ratio_floor and (
        compressed == 0 or size > limits.max_member_ratio * compressed
    ):
        raise bomb(
            f"Member {name!r} expands {size / max(compressed, 1):.0f} times to {size} bytes; "
            f"the limit is {limits.max_member_ratio:g} times past {limits.ratio_floor} bytes."
        )


def top_directory(name: str, top: str | None, is_dir: bool) -> str:
    """An sdist keeps everything in one top directory (its name is free: PyPI takes
    ``ruamel.yaml-0.19.1/`` in ``ruamel_yaml-0.19.1.tar.gz``); returns that directory."""
    first = name.split("/", 1)[0]
    if not first or (top is not None and first != top) or (name == first and not is_dir):
        raise bad_sdist(
            "Every member must be inside one top directory holding PKG-INFO; found "
            f"{name!r}" + (f" beside {top!r}." if top is not None and first != top else ".")
        )
    return first
