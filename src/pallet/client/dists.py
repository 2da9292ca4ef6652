"""The distributions a user points ``pallet publish`` at: found, checked, hashed, grouped.

Name, version and metadata come from each file itself (wheel METADATA, sdist PKG-INFO), read
with the same hardened archive reader the server uses, so a malformed or unsafe archive is
caught before a single byte is sent. Which files the index takes (PyPI's rules, or the import
rules for a token with that scope) is the server's decision: locally the most lenient rules
apply, and a metadata-rule refusal arrives only after the bytes did.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.metadata import RawMetadata, parse_email
from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion, Version

from pallet.core.archives import read_dist_metadata
from pallet.core.filenames import DistFilename, parse_dist_filename
from pallet.core.problems import Problem
from pallet.core.rules import IMPORT

CHUNK = 1 << 20
HASH_CHUNK = 4 << 20
#: sha256; blake2b (PEP 694 takes plain hashlib names); blake2b-256 (the legacy form's
#: ``blake2_256_digest``).
HASHERS: dict[str, Callable[[], Any]] = {
    "sha256": hashlib.sha256,
    "blake2b": hashlib.blake2b,
    "blake2_256": lambda: hashlib.blake2b(digest_size=32),
}


class DistError(Exception):
    """A local file that cannot be published; the message says which file and why."""


@dataclass
class Dist:
    path: Path
    dist: DistFilename
    metadata: RawMetadata
    size: int
    hashes: dict[str, str] = field(default_factory=dict)
    attestations: list[Path] = field(default_factory=list)

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def name(self) -> str:
        """The project name as its metadata spells it (the session's display name)."""
        return str(self.metadata.get("name") or self.dist.project)

    @property
    def version(self) -> str:
        return str(self.metadata.get("version") or self.dist.version)

    @property
    def key(self) -> tuple[str, str]:
        """One publishing session per (normalised name, version), as PEP 694 recommends; 1.0
        and 1.0.0 are one release, as the index sees it."""
        return canonicalize_name(self.name), canonicalize_version(
            self.dist.version, strip_trailing_zero=True
        )

    def hash_file(self, algorithms: Iterable[str] = tuple(HASHERS)) -> dict[str, str]:
        """Digest the file in one pass, one thread per algorithm (hashlib drops the GIL on
        large buffers, so sha256 and blake2b run side by side). Adds to ``self.hashes``."""
        hashers = {name: HASHERS[name]() for name in algorithms}
        with self.path.open("rb") as f, ThreadPoolExecutor(len(hashers) or 1) as pool:
            while chunk := f.read(HASH_CHUNK):
                for _ in pool.map(lambda h, c=chunk: h.update(c), hashers.values()):
                    pass
        self.hashes.update({name: h.hexdigest() for name, h in hashers.items()})
        return self.hashes


def expand(patterns: Iterable[str]) -> list[Path]:
    """Globs (``dist/*``) as well as plain paths; signatures and attestations are skipped, and
    every match must be a file we can publish."""
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise DistError(f"{pattern}: no file matches")
        for match in matches:
            path = Path(match)
            if path.name.endswith((".asc", ".attestation", ".publish.attestation", ".sig")):
                continue
            if path.is_dir():
                raise DistError(f"{path}: is a directory (did you mean {path}/*?)")
            if not path.is_file():
                raise DistError(f"{path}: no such file")
            if path not in paths:
                paths.append(path)
    if not paths:
        raise DistError("no distributions to publish")
    return paths


def inspect(path: Path) -> Dist:
    """Read one distribution's filename and own metadata; refuse what no index could accept."""
    try:
        dist = parse_dist_filename(path.name, IMPORT)
        raw = read_dist_metadata(path, dist, IMPORT.limits)
    except Problem as exc:
        raise DistError(f"{path.name}: {exc.detail or exc.title}") from None
    metadata, _unparsed = parse_email(raw.decode("utf-8", "replace"))
    name, version = metadata.get("name"), metadata.get("version")
    if not name or canonicalize_name(name) != dist.project:
        raise DistError(f"{path.name}: its metadata names project {name!r}")
    try:
        same_version = Version(version or "") == dist.version
    except InvalidVersion:
        same_version = False
    if not same_version:
        raise DistError(f"{path.name}: its metadata says version {version!r}")
    return Dist(path, dist, metadata, path.stat().st_size, attestations=attestations_for(path))


def attestations_for(path: Path) -> list[Path]:
    """PEP 740 attestations written next to a dist as ``<dist>.<anything>.attestation``
    (``.publish.attestation`` is what pypa's publish action writes)."""
    # One directory listing, not a glob: a glob compiles a pattern per file, which cost more
    # than reading the file's metadata when a CI job publishes hundreds of files.
    prefix, suffix = path.name + ".", "attestation"
    return sorted(
        path.parent / name
        for name in os.listdir(path.parent)
        if name.startswith(prefix)
        and name.endswith(suffix)
        and len(name) >= len(prefix) + len(suffix)
    )


def group(dists: Iterable[Dist]) -> dict[tuple[str, str], list[Dist]]:
    """Files by release, wheels before sdists (the order twine and uv use)."""
    out: dict[tuple[str, str], list[Dist]] = {}
    for d in dists:
        out.setdefault(d.key, []).append(d)
    for files in out.values():
        files.sort(key=lambda d: (d.dist.packagetype != "bdist_wheel", d.filename))
    return out
