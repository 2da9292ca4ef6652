"""Inspect an uploaded archive on disk before it can become visible, and pull out its core
metadata. Streaming and bounded: a zip is judged from its central directory plus the METADATA
member; an sdist is decompressed once, member by member, reading only PKG-INFO's bytes.

Hostile archives (traversal, links out of the tree, devices, sparse files, zip bombs,
overlapping zip entries, lying headers, truncation) become 400 problems, never exceptions.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import posixpath
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pallet.core.filenames import DistFilename
from pallet.core.problems import Problem

MiB = 2**20
_DRIVE = re.compile(r"^[A-Za-z]:")
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zip local file header, before name and extra
_EOCD_TAIL = 22 + 65535  # end-of-central-directory record plus the longest comment
# Pax (x, g, X) and GNU long-name (L, K) headers are read whole into memory by tarfile.
_TAR_HEADERS, _MAX_TAR_HEADER = {b"x", b"g", b"X", b"L", b"K"}, MiB
_LINK_WORK = 64  # path components examined per sdist link, on average, when following links
_MAX_LINK = 4096  # PATH_MAX: a longer link target is useless to an unpacker
# Everything a malformed archive can make the standard library raise. RuntimeError: encrypted
# members, and RecursionError from chained pax headers.
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, zlib.error)
_IO_ERRORS = (struct.error, EOFError, OSError, ValueError, LookupError, OverflowError)
_FORMAT_ERRORS = (*_ZIP_ERRORS, *_IO_ERRORS, NotImplementedError, RuntimeError)


@dataclass(frozen=True)
class ArchiveLimits:
    max_uncompressed_size: int = 8 * 2**30
    max_compression_ratio: float = 100.0  # whole archive, and each member over 1 MiB
    max_members: int = 200_000
    max_metadata_size: int = 4 * MiB


def _problem(slug: str, title: str, detail: str) -> Problem:
    return Problem(400, slug, title, detail)


_bomb = partial(_problem, "zip-bomb", "Archive rejected as a decompression bomb")
_corrupt = partial(_problem, "invalid-archive", "Invalid archive")
_unsafe = partial(_problem, "unsafe-archive", "Unsafe archive member")
_bad_wheel = partial(_problem, "invalid-wheel", "Invalid wheel")
_bad_sdist = partial(_problem, "invalid-sdist", "Invalid sdist")


def _too_big(what: str, limits: ArchiveLimits) -> Problem:
    detail = f"{what} may be at most {limits.max_metadata_size} bytes."
    return _problem("invalid-metadata", "Metadata too large", detail)


def _is_unsafe_name(name: str) -> bool:
    """Names an unpacker could write outside its target, or that differ between systems."""
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
    wheel is judged without downloading it)."""
    wheel = dist.packagetype == "bdist_wheel"
    local = isinstance(source, str | os.PathLike)
    with open(source, "rb") if local else contextlib.nullcontext(source) as f:
        if size is None:
            size = f.seek(0, io.SEEK_END)
        try:
            if wheel:
                return _wheel_metadata(f, size, dist, limits)
            return _sdist_metadata(f, size, dist, limits)
        except Problem:
            raise
        except _FORMAT_ERRORS as exc:
            kind = "zip file (a wheel is a zip)" if wheel else ".tar.gz (an sdist is a gzipped tar)"
            raise _corrupt(f"The file is not a readable {kind}: {exc}") from None


def _check_sizes(total: int, compressed: int, limits: ArchiveLimits, what: str = "It") -> None:
    if total > limits.max_uncompressed_size:
        raise _bomb(f"{what} expands to more than {limits.max_uncompressed_size} bytes.")
    if total > MiB and total > limits.max_compression_ratio * max(compressed, 1):
        raise _bomb(
            f"{what} expands more than {limits.max_compression_ratio:g} times "
            f"({total} bytes from {compressed})."
        )


# -- wheels -------------------------------------------------------------------------------------


def _wheel_metadata(f: BinaryIO, size: int, dist: DistFilename, limits: ArchiveLimits) -> bytes:
    count = _declared_entries(f, size)
    if count is not None and count > limits.max_members:
        raise _bomb(f"It declares {count} members; the limit is {limits.max_members}.")
    with zipfile.ZipFile(f) as zf:
        infos = zf.infolist()
        _check_zip_entries(infos, size, getattr(zf, "start_dir", size), limits)
        info_dir = _dist_info_dir(infos, dist)
        names = {i.filename for i in infos}
        for required in ("METADATA", "WHEEL", "RECORD"):
            if f"{info_dir}/{required}" not in names:
                raise _bad_wheel(f"{info_dir}/{required} is missing.")
        meta = zf.getinfo(f"{info_dir}/METADATA")
        if meta.file_size > limits.max_metadata_size:
            raise _too_big("METADATA", limits)
        if meta.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            return _inflate(f, meta)
        with zf.open(meta) as member:  # bzip2/lzma: rare, but installers accept them
            data = member.read(limits.max_metadata_size + 1)
        if len(data) != meta.file_size:
            raise _bomb("METADATA's declared size does not match its content.")
        return data


def _declared_entries(f: BinaryIO, size: int) -> int | None:
    """The entry count from the end record, so a huge central directory is refused unread."""
    tail_len = min(size, _EOCD_TAIL)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or len(tail) - pos < 22:
        return None  # zipfile will say what is wrong
    (count,) = struct.unpack_from("<H", tail, pos + 10)
    if count == 0xFFFF and pos >= 20 and tail[pos - 20 : pos - 16] == b"PK\x06\x07":
        (offset,) = struct.unpack_from("<Q", tail, pos - 12)
        f.seek(offset)
        record = f.read(56)
        if len(record) == 56 and record[:4] == b"PK\x06\x06":
            (count,) = struct.unpack_from("<Q", record, 32)
    return count


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    return info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")


def _check_zip_entries(
    infos: list[zipfile.ZipInfo], size: int, directory_start: int, limits: ArchiveLimits
) -> None:
    if len(infos) > limits.max_members:
        raise _bomb(f"More than {limits.max_members} members.")
    seen: set[str] = set()
    total = 0
    for info in infos:
        if _is_unsafe_name(info.orig_filename):
            raise _unsafe(f"Member {info.orig_filename!r} would escape the install location.")
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
                f"{info.file_size / max(info.compress_size, 1):.0f} times; the limit is "
                f"{limits.max_compression_ratio:g}."
            )
    _check_sizes(total, size, limits)
    # A "better zip bomb" points many entries at one compressed blob: local entries may not
    # overlap each other or the central directory. The local extra field's length is not
    # counted, so the estimate of each entry's end is never too late.
    end, last = 0, None
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.header_offset < end:
            raise _bomb(f"Members {last!r} and {info.filename!r} overlap.")
        end = info.header_offset + _LOCAL_HEADER.size + len(_raw_name(info)) + info.compress_size
        last = info.filename
    if end > directory_start:
        raise _bomb(f"Member {last!r} overlaps the central directory.")


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
        raise _bad_wheel(
            f"A wheel must contain exactly one .dist-info directory, named for "
            f"{dist.project} {dist.version}; found {sorted(dirs) or 'none'}.",
        )
    return matching[0]


def _inflate(f: BinaryIO, info: zipfile.ZipInfo) -> bytes:
    """Read one member ourselves, so a header that lies about its size is caught, not obeyed
    (zipfile stops at the declared size; another unzipper may not)."""
    if info.flag_bits & 0x1:
        raise _corrupt(f"{info.filename} is encrypted.")
    f.seek(info.header_offset)
    header = f.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size:
        raise _corrupt(f"{info.filename}'s local header is truncated.")
    signature, *_, method, _, _, _, _, _, name_len, extra_len = _LOCAL_HEADER.unpack(header)
    if signature != b"PK\x03\x04":
        raise _corrupt(f"{info.filename}'s local header is missing.")
    if f.read(name_len) != _raw_name(info) or method != info.compress_type:
        raise _bomb(f"{info.filename}'s local header disagrees with the central directory.")
    f.seek(extra_len, io.SEEK_CUR)
    deflated = info.compress_type == zipfile.ZIP_DEFLATED
    plausible = info.file_size + info.file_size // 100 + 1024 if deflated else info.file_size
    if info.compress_size > plausible:
        raise _bomb(f"{info.filename}'s compressed size does not fit its declared size.")
    inflater = zlib.decompressobj(-15) if deflated else None
    out = bytearray()
    left = info.compress_size
    while left and not (inflater and inflater.eof):
        chunk = f.read(min(left, 64 * 1024))
        if not chunk:
            raise _corrupt(f"{info.filename} is truncated.")
        left -= len(chunk)
        out += inflater.decompress(chunk, info.file_size + 1 - len(out)) if inflater else chunk
        if len(out) > info.file_size:
            break
    if len(out) != info.file_size or (inflater and not inflater.eof):
        raise _bomb(f"{info.filename}'s declared size does not match its content.")
    if zlib.crc32(out) != info.CRC:
        raise _corrupt(f"{info.filename} fails its CRC check.")
    return bytes(out)


# -- sdists -------------------------------------------------------------------------------------


class _SafeTarInfo(tarfile.TarInfo):
    """Refuses oversized pax / GNU long-name headers before tarfile reads them into memory."""

    @classmethod
    def frombuf(cls, buf: bytes, encoding: str, errors: str) -> _SafeTarInfo:
        info = super().frombuf(buf, encoding, errors)
        if info.type in _TAR_HEADERS and info.size > _MAX_TAR_HEADER:
            raise _bomb(f"A {info.size}-byte tar extended header; the limit is {_MAX_TAR_HEADER}.")
        return info


class _Inflated:
    """The decompressed tar stream, refusing to expand past the limits as it is read (headers
    and padding count too, which the members' sizes alone would not show)."""

    def __init__(self, raw: BinaryIO, compressed: int, limits: ArchiveLimits) -> None:
        self.gz = gzip.GzipFile(fileobj=raw, mode="rb")
        self.compressed, self.limits, self.total = compressed, limits, 0

    def read(self, n: int = -1) -> bytes:
        data = self.gz.read(n if n >= 0 else io.DEFAULT_BUFFER_SIZE)
        self.total += len(data)
        _check_sizes(self.total, self.compressed, self.limits, "Its tar stream")
        return data


def _sdist_metadata(f: BinaryIO, size: int, dist: DistFilename, limits: ArchiveLimits) -> bytes:
    top = dist.stem
    pkg_info: bytes | None = None
    total = count = 0
    names: list[str] = []
    symlinks: dict[str, str] = {}
    hardlinks: list[tuple[str, str]] = []
    f.seek(0)
    stream = _Inflated(f, size, limits)
    with tarfile.open(fileobj=stream, mode="r|", tarinfo=_SafeTarInfo) as tf:  # type: ignore[arg-type]
        for member in tf:
            count += 1
            if count > limits.max_members:
                raise _bomb(f"More than {limits.max_members} members.")
            name = _normal(member.name)
            _check_tar_member(member, name, top)
            total += max(member.size, 0)
            _check_sizes(total, size, limits)
            names.append(name)
            if member.issym():
                if name in symlinks:
                    raise _unsafe(f"Symlink {member.name!r} is defined twice.")
                symlinks[name] = member.linkname
            elif member.islnk():
                hardlinks.append((name, member.linkname))
            elif name == f"{top}/PKG-INFO" and member.isfile():
                if pkg_info is not None:
                    raise _bad_sdist(f"{name} appears twice.")
                if member.size > limits.max_metadata_size:
                    raise _too_big("PKG-INFO", limits)
                extracted = tf.extractfile(member)
                pkg_info = extracted.read(limits.max_metadata_size + 1) if extracted else b""
    _check_links(names, symlinks, hardlinks, top)
    if pkg_info is None:
        raise _bad_sdist(
            f"{top}/PKG-INFO is missing; build the sdist with a standard build backend.",
        )
    return pkg_info


def _normal(name: str) -> str:
    return "/".join(c for c in name.split("/") if c not in ("", "."))


def _check_tar_member(member: tarfile.TarInfo, name: str, top: str) -> None:
    if _is_unsafe_name(member.name):
        raise _unsafe(f"Member {member.name!r} would escape the unpack directory.")
    if name.split("/", 1)[0] != top or (name == top and not member.isdir()):
        raise _bad_sdist(
            f"Every member must be inside one top directory {top!r} (the filename without "
            f".tar.gz); found {member.name!r}.",
        )
    if member.issparse():
        raise _unsafe(f"Member {member.name!r} is a sparse file.")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise _unsafe(f"Member {member.name!r} is a device, FIFO or other special file.")
    link = member.linkname
    if (member.issym() or member.islnk()) and (
        link.startswith("/") or _DRIVE.match(link) or "\\" in link or len(link) > _MAX_LINK
    ):
        raise _unsafe(f"Link {member.name!r} has an absolute or unusable target {link[:200]!r}.")


def _check_links(
    names: list[str], symlinks: Mapping[str, str], hardlinks: list[tuple[str, str]], top: str
) -> None:
    """Follow links the way an unpacker's filesystem would, through the archive's own symlinks,
    so ``a -> .`` then ``b -> a/..`` cannot climb out the way a per-link check would allow.

    Nothing may be stored *under* a symlink, so each symlink's name is where it really lands."""
    if symlinks:
        for name in names:
            parts = name.split("/")
            for i in range(1, len(parts)):
                if "/".join(parts[:i]) in symlinks:
                    raise _unsafe(f"Member {name!r} is stored through a symlinked directory.")
    budget = [_LINK_WORK * (len(symlinks) + len(hardlinks)) + 1024]
    pending = [(name, posixpath.join(posixpath.dirname(name), t)) for name, t in symlinks.items()]
    for name, path in pending + hardlinks:
        where = _resolve(path, symlinks, budget)
        if where is None or not (where == top or where.startswith(top + "/")):
            raise _unsafe(f"Link {name!r} points outside the sdist's directory, or loops.")


def _resolve(path: str, symlinks: Mapping[str, str], budget: list[int]) -> str | None:
    """Where ``path`` lands relative to the unpack directory; None if it climbs out of it,
    loops, or takes more work than the budget shared by all of the archive's links allows."""
    todo = path.split("/")[::-1]
    parts: list[str] = []
    while todo and budget[0] > 0:
        budget[0] -= 1
        comp = todo.pop()
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(comp)
        target = symlinks.get("/".join(parts))
        if target is not None:
            parts.pop()
            hop = target.split("/")
            todo.extend(reversed(hop))
            budget[0] -= len(hop)
    return None if todo else "/".join(parts)
