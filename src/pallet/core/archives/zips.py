"""Zip archives: wheels and the ``.zip`` sdists of older tools, judged from the central
directory (sizes, names, overlaps) plus the one metadata member, which is inflated here so a
header that lies about its size is caught rather than obeyed."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import BinaryIO

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pallet.core.archives.checks import (
    ArchiveContents,
    bad_sdist,
    bad_wheel,
    bomb,
    check_member,
    check_total,
    corrupt,
    is_unsafe_name,
    too_big,
    top_directory,
    unsafe,
)
from pallet.core.filenames import DistFilename
from pallet.core.rules import ArchiveLimits

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zip local file header, before name and extra
_EOCD_TAIL = 22 + 65535  # end-of-central-directory record plus the longest comment


def read_wheel(
    f: BinaryIO, size: int, dist: DistFilename, limits: ArchiveLimits
) -> ArchiveContents:
    with _checked_zip(f, size, limits) as (zf, infos):
        info_dir = _dist_info_dir(infos, dist)
        names = frozenset(i.filename for i in infos)
        for required in ("METADATA", "WHEEL", "RECORD"):
            if f"{info_dir}/{required}" not in names:
                raise bad_wheel(f"{info_dir}/{required} is missing.")
        metadata = _read_member(f, zf, zf.getinfo(f"{info_dir}/METADATA"), limits)
        return ArchiveContents(metadata, info_dir, names)


def read_zip_sdist(f: BinaryIO, size: int, limits: ArchiveLimits) -> ArchiveContents:
    with _checked_zip(f, size, limits) as (zf, infos):
        top = None
        for info in infos:
            top = top_directory(info.filename.rstrip("/"), top, info.is_dir())
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise unsafe(f"Member {info.filename!r} is a symlink; unzippers differ on those.")
        names = frozenset(i.filename.rstrip("/") for i in infos)
        if top is None or f"{top}/PKG-INFO" not in names:
            raise bad_sdist(f"{top or '<top>'}/PKG-INFO is missing.")
        metadata = _read_member(f, zf, zf.getinfo(f"{top}/PKG-INFO"), limits)
        return ArchiveContents(metadata, top, names)


class _checked_zip:  # noqa: N801 - used as a context manager, like zipfile.ZipFile itself
    """Open the zip after refusing a huge central directory unread, then check every entry."""

    def __init__(self, f: BinaryIO, size: int, limits: ArchiveLimits) -> None:
        count = _declared_entries(f, size)
        if count is not None and count > limits.max_members:
            raise bomb(f"It declares {count} members; the limit is {limits.max_members}.")
        self.zf = zipfile.ZipFile(f)
        self.size, self.limits = size, limits

    def __enter__(self) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
        infos = self.zf.infolist()
        _check_entries(infos, self.size, getattr(self.zf, "start_dir", self.size), self.limits)
        return self.zf, infos

    def __exit__(self, *exc: object) -> None:
        self.zf.close()


def _declared_entries(f: BinaryIO, size: int) -> int | None:
    """The entry count from the end record, so a huge central directory is refused unread."""
    tail_len = min(size, _EOCD_TAIL)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or len(tail) - pos < 22:
        return None  # zipfile will say what is wrong
    count: int
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


def _check_entries(
    infos: list[zipfile.ZipInfo], size: int, directory_start: int, limits: ArchiveLimits
) -> None:
    if len(infos) > limits.max_members:
        raise bomb(f"More than {limits.max_members} members.")
    seen: set[str] = set()
    total = 0
    for info in infos:
        if is_unsafe_name(info.orig_filename):
            raise unsafe(f"Member {info.orig_filename!r} would escape the install location.")
        if info.filename in seen:
            raise corrupt(
                f"Member {info.filename!r} appears twice: unzippers disagree on which copy wins."
            )
        seen.add(info.filename)
        total += info.file_size
        check_member(info.filename, info.file_size, info.compress_size, limits)
    check_total(total, size, limits)
    # A "better zip bomb" points many entries at one compressed blob: local entries may not
    # overlap each other or the central directory. The local extra field's length is not
    # counted, so the estimate of each entry's end is never too late.
    end, last = 0, None
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.header_offset < end:
            raise bomb(f"Members {last!r} and {info.filename!r} overlap.")
        end = info.header_offset + _LOCAL_HEADER.size + len(_raw_name(info)) + info.compress_size
        last = info.filename
    if end > directory_start:
        raise bomb(f"Member {last!r} overlaps the central directory.")


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
        raise bad_wheel(
            f"A wheel must contain exactly one .dist-info directory, named for "
            f"{dist.project} {dist.version}; found {sorted(dirs) or 'none'}.",
        )
    return matching[0]


def _read_member(
    f: BinaryIO, zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ArchiveLimits
) -> bytes:
    what = info.filename.rsplit("/", 1)[-1]
    if info.file_size > limits.max_metadata_size:
        raise too_big(what, limits)
    if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return _inflate(f, info)
    with zf.open(info) as member:  # bzip2/lzma: rare, but installers accept them
        data = member.read(limits.max_metadata_size + 1)
    if len(data) != info.file_size:
        raise bomb(f"{what}'s declared size does not match its content.")
    return data


def _inflate(f: BinaryIO, info: zipfile.ZipInfo) -> bytes:
    """Read one member ourselves, so a header that lies about its size is caught, not obeyed
    (zipfile stops at the declared size; another unzipper may not)."""
    if info.flag_bits & 0x1:
        raise corrupt(f"{info.filename} is encrypted.")
    f.seek(info.header_offset)
    header = f.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size:
        raise corrupt(f"{info.filename}'s local header is truncated.")
    signature, *_, method, _, _, _, _, _, name_len, extra_len = _LOCAL_HEADER.unpack(header)
    if signature != b"PK\x03\x04":
        raise corrupt(f"{info.filename}'s local header is missing.")
    if f.read(name_len) != _raw_name(info) or method != info.compress_type:
        raise bomb(f"{info.filename}'s local header disagrees with the central directory.")
    f.seek(extra_len, io.SEEK_CUR)
    deflated = info.compress_type == zipfile.ZIP_DEFLATED
    plausible = info.file_size + info.file_size // 100 + 1024 if deflated else info.file_size
    if info.compress_size > plausible:
        raise bomb(f"{info.filename}'s compressed size does not fit its declared size.")
    inflater = zlib.decompressobj(-15) if deflated else None
    out = bytearray()
    left = info.compress_size
    while left and not (inflater and inflater.eof):
        chunk = f.read(min(left, 64 * 1024))
        if not chunk:
            raise corrupt(f"{info.filename} is truncated.")
        left -= len(chunk)
        out += inflater.decompress(chunk, info.file_size + 1 - len(out)) if inflater else chunk
        if len(out) > info.file_size:
            break
    if len(out) != info.file_size or (inflater and not inflater.eof):
        raise bomb(f"{info.filename}'s declared size does not match its content.")
    if zlib.crc32(out) != info.CRC:
        raise corrupt(f"{info.filename} fails its CRC check.")
    return bytes(out)
