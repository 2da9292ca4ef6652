"""Inspect an uploaded archive on disk before it can become visible, and pull out its core
metadata. Streaming and bounded: a zip is judged from its central directory plus the METADATA
member; an sdist is decompressed once, member by member, reading only PKG-INFO's bytes.

Hostile archives (traversal, links out of the tree, devices, sparse files, zip bombs,
overlapping zip entries, lying headers, truncation) become 400 problems, never exceptions.
"""

from __future__ import annotations

import posixpath
import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pallet.core.filenames import DistFilename
from pallet.core.problems import Problem

MiB = 2**20
_DRIVE = re.compile(r"^[A-Za-z]:")
_LOCAL_HEADER = 30  # fixed part of a zip local file header


@dataclass(frozen=True)
class ArchiveLimits:
    max_uncompressed_size: int = 8 * 2**30
    max_compression_ratio: float = 100.0
    max_members: int = 200_000
    max_metadata_size: int = 4 * MiB


def _problem(slug: str, title: str, detail: str) -> Problem:
    return Problem(400, slug, title, detail)


def _bomb(detail: str) -> Problem:
    return _problem("zip-bomb", "Archive rejected as a decompression bomb", detail)


def _corrupt(detail: str) -> Problem:
    return _problem("invalid-archive", "Invalid archive", detail)


def _unsafe(detail: str) -> Problem:
    return _problem("unsafe-archive", "Unsafe archive member", detail)


def _is_unsafe_name(name: str) -> bool:
    if not name or "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return True
    if name.startswith("/") or _DRIVE.match(name):
        return True
    return ".." in name.split("/")


def read_dist_metadata(
    source: Path | BinaryIO,
    dist: DistFilename,
    limits: ArchiveLimits = ArchiveLimits(),  # noqa: B008
    size: int | None = None,
) -> bytes:
    """Raw METADATA (wheel) or PKG-INFO (sdist) bytes, after the archive passed every check.

    ``source`` is a local file or a seekable reader (e.g. ranged reads of an S3 object, so a
    wheel is judged without downloading it); ``size`` is required for a reader."""
    if size is None:
        size = Path(source).stat().st_size  # type: ignore[arg-type]
    if dist.packagetype == "bdist_wheel":
        return _wheel_metadata(source, size, dist, limits)
    return _sdist_metadata(source, size, dist, limits)


def _check_sizes(total: int, compressed: int, limits: ArchiveLimits) -> None:
    if total > limits.max_uncompressed_size:
        raise _bomb(f"It expands to more than {limits.max_uncompressed_size} bytes.")
    if total > MiB and total > limits.max_compression_ratio * max(compressed, 1):
        raise _bomb(
            f"It expands {total / max(compressed, 1):.0f} times; the limit is "
            f"{limits.max_compression_ratio:.0f}."
        )


def _wheel_metadata(
    path: Path | BinaryIO, size: int, dist: DistFilename, limits: ArchiveLimits
) -> bytes:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise _corrupt(f"Not a readable zip file (a wheel is a zip): {exc}") from None
    with zf:
        infos = zf.infolist()
        _check_zip_entries(infos, size, limits)
        info_dir = _dist_info_dir(infos, dist)
        names = {i.filename for i in infos}
        for required in ("METADATA", "WHEEL", "RECORD"):
            if f"{info_dir}/{required}" not in names:
                raise _problem(
                    "invalid-wheel", "Invalid wheel", f"{info_dir}/{required} is missing."
                )
        meta = zf.getinfo(f"{info_dir}/METADATA")
        if meta.file_size > limits.max_metadata_size:
            raise _problem(
                "invalid-metadata",
                "Metadata too large",
                f"METADATA may be at most {limits.max_metadata_size} bytes.",
            )
        try:
            with zf.open(meta) as f:
                data = f.read(limits.max_metadata_size + 1)
        except (
            zipfile.BadZipFile,
            zlib.error,
            OSError,
            EOFError,
            ValueError,
            NotImplementedError,
        ) as exc:
            raise _corrupt(f"METADATA cannot be read: {exc}") from None
        if len(data) != meta.file_size:
            raise _bomb("METADATA's declared size does not match its content.")
        return data


def _check_zip_entries(
    infos: list[zipfile.ZipInfo], compressed: int, limits: ArchiveLimits
) -> None:
    if len(infos) > limits.max_members:
        raise _bomb(f"More than {limits.max_members} members.")
    seen: set[str] = set()
    total = 0
    for info in infos:
        if _is_unsafe_name(info.filename):
            raise _unsafe(f"Member {info.filename!r} would escape the install location.")
        if info.filename in seen:
            raise _bomb(f"Member {info.filename!r} appears twice.")
        seen.add(info.filename)
        total += info.file_size
        if info.file_size > MiB and (
            info.compress_size == 0
            or info.file_size > limits.max_compression_ratio * info.compress_size
        ):
            raise _bomb(
                f"Member {info.filename!r} expands "
                f"{info.file_size / max(info.compress_size, 1):.0f} times."
            )
    _check_sizes(total, compressed, limits)
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for a, b in zip(ordered, ordered[1:], strict=False):
        end = a.header_offset + _LOCAL_HEADER + len(a.filename.encode()) + a.compress_size
        if end > b.header_offset:
            raise _bomb(f"Members {a.filename!r} and {b.filename!r} overlap.")


def _dist_info_dir(infos: list[zipfile.ZipInfo], dist: DistFilename) -> str:
    dirs = {
        i.filename.split("/", 1)[0]
        for i in infos
        if "/" in i.filename and i.filename.split("/", 1)[0].endswith(".dist-info")
    }
    matching = []
    for d in dirs:
        name, _, version = d.removesuffix(".dist-info").rpartition("-")
        try:
            if canonicalize_name(name) == dist.project and Version(version) == dist.version:
                matching.append(d)
        except InvalidVersion:
            continue
    if len(dirs) != 1 or len(matching) != 1:
        raise _problem(
            "invalid-wheel",
            "Invalid wheel",
            f"A wheel must contain exactly one .dist-info directory named for "
            f"{dist.project} {dist.version}; found {sorted(dirs) or 'none'}.",
        )
    return matching[0]


def _sdist_metadata(
    path: Path | BinaryIO, size: int, dist: DistFilename, limits: ArchiveLimits
) -> bytes:
    top = dist.stem
    compressed = size
    pkg_info: bytes | None = None
    total = count = 0
    try:
        opened = (
            tarfile.open(path, mode="r|gz")
            if isinstance(path, Path)
            else tarfile.open(fileobj=path, mode="r|gz")
        )
        with opened as tf:
            for member in tf:
                count += 1
                if count > limits.max_members:
                    raise _bomb(f"More than {limits.max_members} members.")
                name = member.name.removeprefix("./")
                _check_tar_member(member, name, top)
                total += max(member.size, 0)
                _check_sizes(total, compressed, limits)
                if name == f"{top}/PKG-INFO" and member.isfile():
                    if member.size > limits.max_metadata_size:
                        raise _problem(
                            "invalid-metadata",
                            "Metadata too large",
                            f"PKG-INFO may be at most {limits.max_metadata_size} bytes.",
                        )
                    f = tf.extractfile(member)
                    pkg_info = f.read(limits.max_metadata_size + 1) if f else None
    except Problem:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error, ValueError) as exc:
        raise _corrupt(f"Not a readable .tar.gz (an sdist is a gzipped tar): {exc}") from None
    if pkg_info is None:
        raise _problem("invalid-sdist", "Invalid sdist", f"{top}/PKG-INFO is missing.")
    return pkg_info


def _check_tar_member(member: tarfile.TarInfo, name: str, top: str) -> None:
    if _is_unsafe_name(name):
        raise _unsafe(f"Member {member.name!r} would escape the unpack directory.")
    if name.split("/", 1)[0] != top:
        raise _problem(
            "invalid-sdist",
            "Invalid sdist",
            f"Every member must be inside the top directory {top!r}; found {member.name!r}.",
        )
    if member.issparse():
        raise _unsafe(f"Member {member.name!r} is a sparse file.")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise _unsafe(f"Member {member.name!r} is a device or FIFO.")
    if member.issym() or member.islnk():
        link = member.linkname
        if member.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), link))
        else:
            target = posixpath.normpath(link.removeprefix("./"))
        if link.startswith("/") or not (target == top or target.startswith(top + "/")):
            raise _unsafe(f"Link {member.name!r} points outside the sdist ({link!r}).")
