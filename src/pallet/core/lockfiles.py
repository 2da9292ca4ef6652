"""The files a lockfile pins, by project and sha256: ``pylock.toml`` (PEP 751), ``uv.lock``,
and ``requirements.txt`` with ``--hash`` (pip's hash-checking mode). Pure: text in, pins out.
A lockfile entry without a sha256 pins nothing (it cannot be checked)."""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class LockfileError(ValueError):
    pass


@dataclass(frozen=True, order=True)
class Pin:
    project: str  # normalised
    sha256: str


def read(filename: str, text: str) -> list[Pin]:
    """The pins of a lockfile named ``filename`` (its kind is told by its name)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    if base == "uv.lock":
        return _uv_lock(_toml(text))
    if base.startswith("pylock.") and base.endswith(".toml") or base == "pylock.toml":
        return _pylock(_toml(text))
    return _requirements(text)


def _toml(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockfileError(f"not TOML: {exc}") from None


def _sha(value: object) -> str | None:
    digest = value.lower() if isinstance(value, str) else ""
    return digest if _SHA256.match(digest) else None


def _pins(project: object, digests: Iterable[str | None]) -> list[Pin]:
    if not isinstance(project, str) or not project:
        return []
    name = canonicalize_name(project)
    return [Pin(name, d) for d in digests if d]


def _artifacts(packages: object) -> Iterator[tuple[object, list[dict[str, Any]]]]:
    """(name, [sdist and wheel tables]) of each package table of a TOML lockfile."""
    for package in packages if isinstance(packages, list) else []:
        if isinstance(package, dict):
            artifacts = [package.get("sdist"), *(package.get("wheels") or [])]
            yield package.get("name"), [a for a in artifacts if isinstance(a, dict)]


def _uv_lock(doc: dict[str, Any]) -> list[Pin]:
    """uv.lock: ``hash = "sha256:<hex>"`` on each sdist and wheel."""
    pins: list[Pin] = []
    for name, artifacts in _artifacts(doc.get("package")):
        hashes = [str(a.get("hash", "")).partition(":") for a in artifacts]
        pins += _pins(name, [_sha(digest) for algo, _, digest in hashes if algo == "sha256"])
    return sorted(set(pins))


def _pylock(doc: dict[str, Any]) -> list[Pin]:
    """PEP 751: ``hashes = {sha256 = "<hex>"}`` on each sdist and wheel."""
    pins: list[Pin] = []
    for name, artifacts in _artifacts(doc.get("packages")):
        hashes = [a.get("hashes") for a in artifacts]
        pins += _pins(name, [_sha(h.get("sha256")) for h in hashes if isinstance(h, dict)])
    return sorted(set(pins))


def _requirements(text: str) -> list[Pin]:
    pins: list[Pin] = []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            raise LockfileError(f"cannot read the line {line[:100]!r}") from None
        try:
            project = Requirement(words[0]).name
        except InvalidRequirement:
            continue  # a URL or path requirement: nothing an index serves
        digests = []
        for i, word in enumerate(words[1:], start=1):
            value = word.partition("=")[2] if word.startswith("--hash=") else None
            if word == "--hash" and i + 1 < len(words):
                value = words[i + 1]
            if value and value.startswith("sha256:"):
                digests.append(_sha(value.removeprefix("sha256:")))
        pins += _pins(project, digests)
    return sorted(set(pins))
