"""Build real wheels and sdists inside tests, so no binary is ever committed.

The builders write the same files a build backend would (METADATA/PKG-INFO, WHEEL, RECORD), with
knobs to produce the hostile variants the upload tests need.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

from packaging.utils import canonicalize_name


def dist_name(name: str) -> str:
    """The escaped name used in filenames and .dist-info directories."""
    return canonicalize_name(name).replace("-", "_")


def core_metadata(
    name: str,
    version: str,
    *,
    summary: str = "A test package",
    requires_dist: list[str] | tuple[str, ...] = (),
    requires_python: str | None = None,
    extra_headers: str = "",
    metadata_version: str = "2.4",
) -> str:
    lines = [
        f"Metadata-Version: {metadata_version}",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {summary}",
    ]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires_dist]
    return "\n".join(lines) + "\n" + extra_headers + "\nLong description.\n"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    metadata: str | None = None,
    files: dict[str, bytes] | None = None,
    tag: str = "py3-none-any",
    filename: str | None = None,
    requires_dist: list[str] | tuple[str, ...] = (),
    requires_python: str | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    """Write ``{name}-{version}-{tag}.whl`` with an importable module named after the project."""
    stem = f"{dist_name(name)}-{version}"
    module = dist_name(name)
    contents: dict[str, bytes] = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n".encode(),
    }
    contents.update(files or {})
    info = f"{stem}.dist-info"
    contents[f"{info}/METADATA"] = (
        metadata
        if metadata is not None
        else core_metadata(
            name, version, requires_dist=requires_dist, requires_python=requires_python
        )
    ).encode()
    contents[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: pallet-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
    ).encode()
    record = [_record_line(p, d) for p, d in contents.items()] + [f"{info}/RECORD,,"]
    contents[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    Path(directory).mkdir(parents=True, exist_ok=True)
    path = Path(directory) / (filename or f"{stem}-{tag}.whl")
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for member, data in contents.items():
            zf.writestr(member, data)
    return path


def make_sdist(
    directory: Path,
    name: str,
    version: str,
    *,
    metadata: str | None = None,
    files: dict[str, bytes] | None = None,
    filename: str | None = None,
    top: str | None = None,
    requires_dist: list[str] | tuple[str, ...] = (),
) -> Path:
    """Write a PEP 625 sdist ``{name}-{version}.tar.gz`` whose top directory holds PKG-INFO."""
    stem = f"{dist_name(name)}-{version}"
    top = top if top is not None else stem
    pkg_info = (
        metadata
        if metadata is not None
        else core_metadata(name, version, requires_dist=requires_dist)
    ).encode()
    module = dist_name(name)
    contents = {
        "PKG-INFO": pkg_info,
        "pyproject.toml": (
            '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n'
        ).encode(),
        f"{module}/__init__.py": f"__version__ = {version!r}\n".encode(),
    }
    contents.update(files or {})
    Path(directory).mkdir(parents=True, exist_ok=True)
    path = Path(directory) / (filename or f"{stem}.tar.gz")
    with tarfile.open(path, "w:gz") as tf:
        for member, data in contents.items():
            ti = tarfile.TarInfo(f"{top}/{member}" if top else member)
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
    return path


def make_large_wheel(
    directory: Path, name: str, version: str, size: int, *, tag: str = "py3-none-any"
) -> Path:
    """A valid wheel of about ``size`` bytes (one stored member of random bytes), written in
    chunks so the test process never holds it in memory."""
    import os

    stem, module = f"{dist_name(name)}-{version}", dist_name(name)
    info = f"{stem}.dist-info"
    Path(directory).mkdir(parents=True, exist_ok=True)
    path = Path(directory) / f"{stem}-{tag}.whl"
    record = []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        digest, left = hashlib.sha256(), size
        with zf.open(f"{module}/payload.bin", "w", force_zip64=True) as member:
            while left > 0:
                chunk = os.urandom(min(left, 4 << 20))
                digest.update(chunk)
                member.write(chunk)
                left -= len(chunk)
        b64 = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
        record.append(f"{module}/payload.bin,sha256={b64},{size}")
        small = {
            f"{module}/__init__.py": f"__version__ = {version!r}\n".encode(),
            f"{info}/METADATA": core_metadata(name, version).encode(),
            f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: pallet-tests\nRoot-Is-Purelib: true\n"
            + f"Tag: {tag}\n".encode(),
        }
        for member_name, data in small.items():
            zf.writestr(member_name, data)
            record.append(_record_line(member_name, data))
        record.append(f"{info}/RECORD,,")
        zf.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path
