"""Genuine PEP 740 attestations for tests: Sigstore-signed by real GitHub and GitLab workflows.

``pypi-attestations`` (the library PyPI verifies attestations with) ships dists with their
attestations in its sdist's ``test/assets``. They are fetched once with ``pip download`` (sha256
checked), cached like the corpus, and verify offline against the Sigstore trust root that the
installed ``sigstore`` carries: the transparency-log entry dates each signature inside its
certificate's ten minutes, so they do not age.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

SDIST = "pypi_attestations-0.0.31.tar.gz"
SDIST_SHA256 = "5a2473aca7d7f65caf2c3a985691c5cf9264a97fa68c98fbae6e96320bcc7c9a"
_ASSETS = "pypi_attestations-0.0.31/test/assets/"


@dataclass(frozen=True)
class Attested:
    """A dist, its ``.publish.attestation``, and who signed it."""

    dist: Path
    attestation: Path
    project: str
    version: str
    kind: str  # GitHub | GitLab
    repository: str
    workflow: str


GITHUB = ("pypi_attestations-0.0.19.tar.gz", "pypi-attestations", "0.0.19", "GitHub",
          "trailofbits/pypi-attestations", "release.yml")  # fmt: skip
GITLAB = ("gitlab_oidc_project-0.0.3.tar.gz", "gitlab-oidc-project", "0.0.3", "GitLab",
          "facutuesca/gitlab-oidc-project", ".gitlab-ci.yml")  # fmt: skip


def _cache() -> Path:
    root = os.environ.get("PALLET_CORPUS_DIR") or str(Path.home() / ".cache/pallet/corpus")
    return Path(root) / "attestations"


def attested(which: tuple[str, ...] = GITHUB) -> Attested:
    filename, project, version, kind, repository, workflow = which
    folder = _cache()
    folder.mkdir(parents=True, exist_ok=True)
    dist, attestation = folder / filename, folder / f"{filename}.publish.attestation"
    with (folder / ".lock").open("w") as lock:  # xdist workers fetch once between them
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (dist.is_file() and attestation.is_file()):
            _extract(_download(), folder)
    return Attested(dist, attestation, project, version, kind, repository, workflow)


def _download() -> Path:
    target = Path(tempfile.mkdtemp(prefix="pallet-attestations-"))
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
         "--dest", str(target), "pypi-attestations==0.0.31"],
        check=True, timeout=600,
    )  # fmt: skip
    sdist = target / SDIST
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise AssertionError(f"{SDIST}: sha256 {digest}, expected {SDIST_SHA256}")
    return sdist


def _extract(sdist: Path, folder: Path) -> None:
    wanted = {f"{_ASSETS}{name}" for which in (GITHUB, GITLAB) for name in
              (which[0], f"{which[0]}.publish.attestation")}  # fmt: skip
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            if member.name in wanted and member.isfile():
                source = tar.extractfile(member)
                assert source is not None
                (folder / Path(member.name).name).write_bytes(source.read())
