"""The real-world corpus: distributions fetched by name and version with ``pip download``.

``manifest.toml`` lists every file: its exact filename, the ``pip download`` arguments that bring
it (with the machine's own pip configuration, always ``--no-deps``), its sha256 and the verdict
PyPI's rules give it (see the manifest's header). Files are cached in ``PALLET_CORPUS_DIR``
(default ``~/.cache/pallet/corpus``), so a second run downloads nothing. Shapes pip cannot fetch on
Python 3 are built by ``replicas.py``.

    python -m tests.corpus.fetch              # fetch what is missing, verify everything
    python -m tests.corpus.fetch --record     # also write missing sha256 values into the manifest
    python -m tests.corpus.fetch --check      # verify only; exit 1 if anything is missing
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

MANIFEST = Path(__file__).with_name("manifest.toml")
VERDICTS = ("accept", "import", "refuse")
DEFAULT_JOBS = 4
#: Requirements per ``pip download`` process: few enough that a failure is cheap to pinpoint.
CHUNK = 12
PIP_TIMEOUT = 1200
_STAMPS = ".verified.json"


class CorpusError(RuntimeError):
    """Some corpus files could not be fetched or do not match the manifest."""


@dataclass(frozen=True)
class Dist:
    """One manifest entry."""

    filename: str
    verdict: str
    pip: tuple[str, ...] = ()
    sha256: str | None = None
    replica: bool = False
    synthetic: bool = False
    note: str = ""
    build_constraints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"{self.filename}: verdict must be one of {VERDICTS}")
        if not self.replica and not self.pip:
            raise ValueError(f"{self.filename}: a real file needs pip arguments")
        if self.pip and self.pip[-1].startswith("-"):
            raise ValueError(f"{self.filename}: the requirement must be the last pip argument")

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def stem_parts(self) -> tuple[str, str]:
        """(name, version) exactly as written in the filename."""
        if self.is_wheel:
            name, version = self.filename.split("-")[:2]
            return name, version
        stem = re.sub(r"\.(tar\.gz|zip)$", "", self.filename)
        name, _, version = stem.rpartition("-")
        return name, version

    @property
    def project(self) -> str:
        """The normalised project name."""
        if self.is_wheel:
            return str(parse_wheel_filename(self.filename)[0])
        return canonicalize_name(self.stem_parts[0])

    @property
    def version(self) -> str:
        return self.stem_parts[1]

    @property
    def requirement(self) -> str:
        return self.pip[-1]

    @property
    def options(self) -> tuple[str, ...]:
        return self.pip[:-1]

    @property
    def shape(self) -> str:
        """A coarse label for reports: wheel platform family or sdist archive type."""
        if not self.is_wheel:
            return "sdist .zip" if self.filename.endswith(".zip") else "sdist .tar.gz"
        tags = parse_wheel_filename(self.filename)[3]
        platforms = {t.platform for t in tags}
        for prefix, label in (
            ("manylinux", "manylinux"),
            ("musllinux", "musllinux"),
            ("win", "windows"),
            ("macosx", "macos"),
        ):
            matching = sorted(p for p in platforms if p.startswith(prefix))
            if matching:
                arch = "x86_64" if "x86_64" in matching[0] else matching[0].rsplit("_", 1)[-1]
                return (
                    f"wheel {label} {arch}"
                    if label in ("manylinux", "musllinux")
                    else f"wheel {label}"
                )
        return "wheel pure" if platforms == {"any"} else f"wheel {sorted(platforms)[0]}"


def load_manifest(path: Path = MANIFEST) -> list[Dist]:
    data = tomllib.loads(path.read_text())
    dists = []
    for raw in data["dist"]:
        raw = dict(raw)
        for key in ("pip", "build_constraints"):
            if key in raw:
                raw[key] = tuple(raw[key])
        dists.append(Dist(**raw))
    names = Counter(d.filename for d in dists)
    duplicates = [n for n, c in names.items() if c > 1]
    if duplicates:
        raise ValueError(f"duplicate manifest entries: {duplicates}")
    return dists


def cache_dir() -> Path:
    configured = os.environ.get("PALLET_CORPUS_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache/pallet/corpus"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One fetcher per cache directory at a time (pytest-xdist workers share it)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class _Stamps:
    """Remembers (size, mtime) of files already hashed, so a cached run hashes nothing."""

    path: Path
    data: dict[str, list] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> _Stamps:
        path = directory / _STAMPS
        try:
            return cls(path, json.loads(path.read_text()))
        except (OSError, ValueError):
            return cls(path)

    def digest(self, path: Path) -> str:
        stat = path.stat()
        known = self.data.get(path.name)
        if known and known[0] == stat.st_size and known[1] == stat.st_mtime_ns:
            return known[2]
        digest = sha256_file(path)
        self.data[path.name] = [stat.st_size, stat.st_mtime_ns, digest]
        return digest

    def forget(self, name: str) -> None:
        self.data.pop(name, None)

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=0, sort_keys=True))
        os.replace(tmp, self.path)


def _pip_download(dists: list[Dist], directory: Path, log: Callable[[str], None]) -> dict[str, str]:
    """Run one ``pip download`` for dists sharing options; move what arrived into the cache.

    Returns {filename: error} for the dists that did not arrive as expected.
    """
    options = dists[0].options
    constraints = dists[0].build_constraints
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=directory) as tmp:
        dest = Path(tmp) / "dest"
        dest.mkdir()
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            "--dest",
            str(dest),
            *options,
        ]
        if constraints:
            constraint_file = Path(tmp) / "build-constraints.txt"
            constraint_file.write_text("\n".join(constraints) + "\n")
            cmd += ["--build-constraint", str(constraint_file)]
        cmd += [d.requirement for d in dists]
        started = time.monotonic()
        result = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT,
            check=False,
        )
        log(
            f"pip download {' '.join(d.requirement for d in dists)} "
            f"[exit {result.returncode}, {time.monotonic() - started:.1f}s]"
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            return {d.filename: f"pip download failed:\n{tail}" for d in dists}
        arrived = {p.name: p for p in dest.iterdir()}
        expected = {d.filename for d in dists}
        for dist in dists:
            path = arrived.get(dist.filename)
            if path is None:
                others = sorted(set(arrived) - expected)
                errors[dist.filename] = f"pip did not save it (saved instead: {others})"
                continue
            if dist.sha256 and sha256_file(path) != dist.sha256:
                errors[dist.filename] = "sha256 differs from the manifest"
                continue
            os.replace(path, directory / dist.filename)
    return errors


def _chunks(dists: list[Dist]) -> list[list[Dist]]:
    """Batches of dists that one pip process can fetch: same options, distinct projects."""
    groups: dict[tuple, list[list[Dist]]] = {}
    for dist in dists:
        batches = groups.setdefault((dist.options, dist.build_constraints), [])
        for batch in batches:
            if len(batch) < CHUNK and all(d.project != dist.project for d in batch):
                batch.append(dist)
                break
        else:
            batches.append([dist])
    return [batch for batches in groups.values() for batch in batches]


def ensure(
    dists: list[Dist] | None = None,
    directory: Path | None = None,
    *,
    jobs: int = DEFAULT_JOBS,
    log: Callable[[str], None] = lambda _msg: None,
    download: bool = True,
) -> dict[str, Path]:
    """Make every corpus file present and verified in ``directory``; return {filename: path}.

    Idempotent: files already present with the manifest's sha256 are left alone. Raises
    CorpusError naming every file that could not be had.
    """
    from tests.corpus import replicas

    dists = load_manifest() if dists is None else dists
    directory = (directory or cache_dir()).resolve()
    with _locked(directory):
        stamps = _Stamps.load(directory)
        missing: list[Dist] = []
        errors: dict[str, str] = {}
        for dist in dists:
            path = directory / dist.filename
            if path.exists():
                if dist.sha256 is None or stamps.digest(path) == dist.sha256:
                    continue
                log(f"{dist.filename}: sha256 differs from the manifest; fetching it again")
                path.unlink()
                stamps.forget(dist.filename)
            missing.append(dist)
        if missing and not download:
            raise CorpusError(f"{len(missing)} corpus files missing in {directory}")

        for dist in [d for d in missing if d.replica]:
            built = replicas.build(dist.filename, directory)
            if dist.sha256 and sha256_file(built) != dist.sha256:
                errors[dist.filename] = "replica's sha256 differs from the manifest"
        chunks = _chunks([d for d in missing if not d.replica])
        if chunks:
            log(f"fetching {sum(map(len, chunks))} files with {len(chunks)} pip processes")
        with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
            futures = {pool.submit(_pip_download, chunk, directory, log): chunk for chunk in chunks}
            for future in concurrent.futures.as_completed(futures):
                failed = future.result()
                chunk = futures[future]
                if failed and len(chunk) > 1:
                    # Pinpoint: one bad requirement must not hide the others.
                    for dist in chunk:
                        if dist.filename in failed:
                            errors.update(_pip_download([dist], directory, log))
                else:
                    errors.update(failed)

        found: dict[str, Path] = {}
        for dist in dists:
            path = directory / dist.filename
            if dist.filename in errors:
                continue
            if not path.exists():
                errors[dist.filename] = "missing after fetching"
                continue
            digest = stamps.digest(path)
            if dist.sha256 and digest != dist.sha256:
                errors[dist.filename] = "sha256 differs from the manifest"
                continue
            found[dist.filename] = path
        stamps.save()
    if errors:
        detail = "\n".join(f"- {name}: {why}" for name, why in sorted(errors.items()))
        raise CorpusError(f"{len(errors)} corpus files unavailable in {directory}:\n{detail}")
    return found


def record_hashes(paths: dict[str, Path], manifest: Path = MANIFEST) -> int:
    """Write ``sha256 = ...`` under each entry that has none; returns how many were added."""
    known = {d.filename for d in load_manifest(manifest) if d.sha256}
    lines = manifest.read_text().splitlines(keepends=True)
    out: list[str] = []
    added = 0
    for line in lines:
        out.append(line)
        m = re.match(r'^filename = "([^"]+)"\s*$', line)
        if m and m.group(1) not in known and m.group(1) in paths:
            out.append(f'sha256 = "{sha256_file(paths[m.group(1)])}"\n')
            added += 1
    manifest.write_text("".join(out))
    return added


def summary(dists: list[Dist], paths: dict[str, Path]) -> str:
    by_verdict = Counter(d.verdict for d in dists)
    by_shape = Counter(d.shape for d in dists)
    size = sum(p.stat().st_size for p in paths.values())
    lines = [
        f"{len(dists)} files, {size / 1e6:.1f} MB, "
        + ", ".join(f"{by_verdict[v]} {v}" for v in VERDICTS)
        + f", {sum(d.replica for d in dists)} replicas",
        *(f"  {count:4d}  {shape}" for shape, count in sorted(by_shape.items())),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=None, help="cache directory")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="pip processes at once")
    parser.add_argument("--record", action="store_true", help="write missing sha256 values")
    parser.add_argument("--check", action="store_true", help="verify only, download nothing")
    args = parser.parse_args(argv)
    dists = load_manifest()
    started = time.monotonic()
    try:
        paths = ensure(
            dists,
            args.dir,
            jobs=args.jobs,
            log=lambda msg: print(msg, flush=True),
            download=not args.check,
        )
    except CorpusError as err:
        print(err, file=sys.stderr)
        return 1
    if args.record:
        print(f"recorded {record_hashes(paths)} sha256 values in {MANIFEST.name}")
    print(summary(dists, paths))
    print(f"corpus ready in {(args.dir or cache_dir())} ({time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
