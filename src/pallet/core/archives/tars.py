"""Gzipped tar sdists, read as one stream: every member's name, type and links are checked as
it passes, the decompressed bytes are counted against the limits as they are produced, and
only PKG-INFO's bytes are kept."""

from __future__ import annotations

import gzip
import io
import posixpath
import tarfile
from collections.abc import Mapping
from typing import BinaryIO, Self

from pallet.core.archives.checks import (
    DRIVE,
    ArchiveContents,
    bad_sdist,
    bomb,
    check_total,
    is_unsafe_name,
    too_big,
    top_directory,
    unsafe,
)
from pallet.core.rules import ArchiveLimits

MiB = 2**20
# Pax (x, g, X) and GNU long-name (L, K) headers are read whole into memory by tarfile.
_TAR_HEADERS, _MAX_TAR_HEADER = {b"x", b"g", b"X", b"L", b"K"}, MiB
_LINK_WORK = 64  # path components examined per sdist link, on average, when following links
_MAX_LINK = 4096  # PATH_MAX: a longer link target is useless to an unpacker


class _SafeTarInfo(tarfile.TarInfo):
    """Refuses oversized pax / GNU long-name headers before tarfile reads them into memory."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        info = super().frombuf(buf, encoding, errors)
        if info.type in _TAR_HEADERS and info.size > _MAX_TAR_HEADER:
            raise bomb(f"A {info.size}-byte tar extended header; the limit is {_MAX_TAR_HEADER}.")
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
        check_total(self.total, self.compressed, self.limits, "Its tar stream")
        return data


def read_tar_sdist(f: BinaryIO, size: int, limits: ArchiveLimits) -> ArchiveContents:
    top: str | None = None
    pkg_info: bytes | None = None
    total = count = 0
    names: list[str] = []
    symlinks: dict[str, str] = {}
    hardlinks: list[tuple[str, str]] = []
    f.seek(0)
    stream = _Inflated(f, size, limits)
    # typeshed wants a seekable, writable file object, but a "r|" stream is only ever read.
    with tarfile.open(fileobj=stream, mode="r|", tarinfo=_SafeTarInfo) as tf:  # type: ignore[call-overload]
        for member in tf:
            count += 1
            if count > limits.max_members:
                raise bomb(f"More than {limits.max_members} members.")
            name = _normal(member.name)
            _check_member(member)
            top = top_directory(name, top, member.isdir())
            total += max(member.size, 0)
            check_total(total, size, limits)
            names.append(name)
            if member.issym():
                if name in symlinks:
                    raise unsafe(f"Symlink {member.name!r} is defined twice.")
                symlinks[name] = member.linkname
            elif member.islnk():
                hardlinks.append((name, member.linkname))
            elif name == f"{top}/PKG-INFO" and member.isfile():
                if pkg_info is not None:
                    raise bad_sdist(f"{name} appears twice.")
                if member.size > limits.max_metadata_size:
                    raise too_big("PKG-INFO", limits)
                extracted = tf.extractfile(member)
                pkg_info = extracted.read(limits.max_metadata_size + 1) if extracted else b""
    if top is None or pkg_info is None:
        raise bad_sdist(
            f"{top or '<top>'}/PKG-INFO is missing; build the sdist with a standard build "
            "backend.",
        )
    _check_links(names, symlinks, hardlinks, top)
    return ArchiveContents(pkg_info, top, frozenset(names))


def _normal(name: str) -> str:
    return "/".join(c for c in name.split("/") if c not in ("", "."))


def _check_member(member: tarfile.TarInfo) -> None:
    if is_unsafe_name(member.name):
        raise unsafe(f"Member {member.name!r} would escape the unpack directory.")
    if member.issparse():
        raise unsafe(f"Member {member.name!r} is a sparse file.")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise unsafe(f"Member {member.name!r} is a device, FIFO or other special file.")
    link = member.linkname
    if (member.issym() or member.islnk()) and (
        link.startswith("/") or DRIVE.match(link) or "\\" in link or len(link) > _MAX_LINK
    ):
        raise unsafe(f"Link {member.name!r} has an absolute or unusable target {link[:200]!r}.")
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
                    raise unsafe(f"Member {name!r} is stored through a symlinked directory.")
    budget = [_LINK_WORK * (len(symlinks) + len(hardlinks)) + 1024]
    pending = [(name, posixpath.join(posixpath.dirname(name), t)) for name, t in symlinks.items()]
    for name, path in pending + hardlinks:
        where = _resolve(path, symlinks, budget)
        if where is None or not (where == top or where.startswith(top + "/")):
            raise unsafe(f"Link {name!r} points outside the sdist's directory, or loops.")


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
