"""Inspect an uploaded archive before it can become visible, and pull out its core metadata.

Streaming and bounded: a zip (wheel or ``.zip`` sdist) is judged from its central directory
plus the metadata member; a ``.tar.gz`` sdist is decompressed once, member by member, reading
only PKG-INFO's bytes. Hostile archives (traversal, links out of the tree, devices, sparse
files, decompression bombs, overlapping zip entries, lying headers, truncation) become 400
problems, never exceptions.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import BinaryIO

from pallet.core.archives import tars, zips
from pallet.core.archives.checks import FORMAT_ERRORS, ArchiveContents, corrupt
from pallet.core.filenames import DistFilename
from pallet.core.problems import Problem
from pallet.core.rules import ArchiveLimits

__all__ = ["ArchiveContents", "ArchiveLimits", "read_dist_contents", "read_dist_metadata"]


def read_dist_contents(
    source: Path | BinaryIO,
    dist: DistFilename,
    limits: ArchiveLimits = ArchiveLimits(),  # noqa: B008
    size: int | None = None,
) -> ArchiveContents:
    """Check the whole archive and return its metadata and member names.

    ``source`` is a local file or a seekable reader (e.g. ranged reads of an S3 object, so a
    wheel is judged without downloading it)."""
    reader: contextlib.AbstractContextManager[BinaryIO] = (
        open(source, "rb")
        if isinstance(source, str | os.PathLike)
        else contextlib.nullcontext(source)
    )
    with reader as f:
        if size is None:
            size = f.seek(0, io.SEEK_END)
        try:
            if dist.packagetype == "bdist_wheel":
                return zips.read_wheel(f, size, dist, limits)
            if dist.is_zip:
                return zips.read_zip_sdist(f, size, limits)
            return tars.read_tar_sdist(f, size, limits)
        except Problem:
            raise
        except FORMAT_ERRORS as exc:
            kind = "zip file" if dist.is_zip else ".tar.gz (a gzipped tar)"
            raise corrupt(f"The file is not a readable {kind}: {exc}") from None


def read_dist_metadata(
    source: Path | BinaryIO,
    dist: DistFilename,
    limits: ArchiveLimits = ArchiveLimits(),  # noqa: B008
    size: int | None = None,
) -> bytes:
    """Raw METADATA (wheel) or PKG-INFO (sdist) bytes, after the archive passed every check."""
    return read_dist_contents(source, dist, limits, size).metadata
