"""The one path to visibility.

Blobs before rows, rows before visibility: the verified file is moved to its content address
first, then one transaction creates the project/release if needed, checks the filename namespace
(a unique constraint, so it holds across replicas and against concurrent uploads), enforces the
project quota, inserts the file row and journals the change. A file is visible exactly when that
transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from packaging.utils import canonicalize_name, canonicalize_version
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from pallet.core.problems import Problem
from pallet.core.routing import Claim
from pallet.db import claims, journal, search
from pallet.db.models import DeletedFilename, File, Project, Release
from pallet.db.session import read_session, retrying
from pallet.storage import BlobStore, blob_key
from pallet.upload.verify import VerifiedFile


@dataclass(frozen=True)
class Published:
    filename: str
    sha256: str
    created: bool  # False: an identical file was already there (idempotent re-upload)


def file_exists(filename: str, status: int) -> Problem:
    # twine's --skip-existing and PyPI users look for this exact wording.
    return Problem(
        status,
        "file-exists",
        "File already exists",
        f"File already exists ('{filename}') with different contents. A filename can be used "
        "only once; upload a new version (or a wheel with a build tag) instead.",
    )


def _existing(session: Session, vf: VerifiedFile, conflict_status: int) -> Published | None:
    row = session.execute(
        select(File.sha256, File.published).where(File.filename == vf.filename)
    ).first()
    if row is not None:
        if not row.published:
            raise Problem(
                409,
                "filename-reserved",
                "Filename being published",
                f"'{vf.filename}' is reserved by an Upload 2.0 publish in progress.",
            )
        if row.sha256 == vf.spooled.digests.sha256:
            return Published(vf.filename, row.sha256, created=False)
        raise file_exists(vf.filename, conflict_status)
    if session.get(DeletedFilename, vf.filename) is not None:
        raise Problem(
            conflict_status,
            "filename-reused",
            "Filename previously used",
            f"'{vf.filename}' belonged to a file that was deleted; filenames are never reused. "
            "Upload a new version instead.",
        )
    return None


def store_blobs(store: BlobStore, vf: VerifiedFile, *, blob_stored: bool = False) -> None:
    """``blob_stored``: the file is already at its content address (verified in place)."""
    key = blob_key(vf.spooled.digests.sha256)
    if blob_stored:
        pass
    elif store.size(key) is None:
        store.put_file(key, vf.spooled.path)
    else:
        vf.spooled.discard()
    if vf.metadata_sha256:
        meta_key = blob_key(vf.metadata_sha256)
        if store.size(meta_key) is None:
            store.put_bytes(meta_key, vf.metadata_bytes)


def get_or_create_project(session: Session, name: str) -> Project:
    normalized = canonicalize_name(name)
    project = session.execute(
        select(Project).where(Project.normalized_name == normalized)
    ).scalar_one_or_none()
    if project is None:
        project = Project(name=name, normalized_name=normalized, created=datetime.now(UTC))
        session.add(project)
        session.flush()  # a concurrent creator makes this raise IntegrityError -> retried
        journal.record(session, project, "create project")
        claims.add(session, Claim(normalized, prefix=False), "upload")
    return project


@dataclass(frozen=True)
class FileFacts:
    """What a files row records; built from a verified upload or a completed file session."""

    filename: str
    version: str
    size: int
    sha256: str
    blake2_256: str | None
    md5: str | None
    packagetype: str
    python_version: str
    requires_python: str | None
    metadata_sha256: str | None
    info: dict
    attestations: list | None = None
    publisher: dict | None = None

    @classmethod
    def of(cls, vf: VerifiedFile) -> FileFacts:
        d = vf.spooled.digests
        return cls(
            filename=vf.filename,
            version=str(vf.metadata.version),
            size=d.size,
            sha256=d.sha256,
            blake2_256=d.blake2_256,
            md5=d.md5,
            packagetype=vf.dist.packagetype,
            python_version=vf.dist.python_version,
            requires_python=vf.info.get("requires_python"),
            metadata_sha256=vf.metadata_sha256,
            info=vf.info,
            attestations=vf.attestations,
            publisher=vf.publisher,
        )


def get_or_create_release(session: Session, project: Project, facts: FileFacts) -> Release:
    canonical = canonicalize_version(facts.version, strip_trailing_zero=True)
    release = session.execute(
        select(Release).where(
            Release.project_id == project.id, Release.canonical_version == canonical
        )
    ).scalar_one_or_none()
    if release is None:
        release = Release(
            project_id=project.id,
            version=facts.version,
            canonical_version=canonical,
            created=datetime.now(UTC),
            requires_python=facts.requires_python,
            info=facts.info,
        )
        session.add(release)
        session.flush()
    return release


def check_quota(session: Session, project: Project, size: int, quota: int) -> None:
    if not quota:
        return
    used = session.execute(
        select(func.coalesce(func.sum(File.size), 0))
        .join(Release, File.release_id == Release.id)
        .where(Release.project_id == project.id)
    ).scalar_one()
    if used + size > quota:
        raise Problem(
            400,
            "quota-exceeded",
            "Project quota exceeded",
            f"Project {project.name!r} uses {used} bytes; this file ({size} bytes) would exceed "
            f"its quota of {quota} bytes (PALLET_PROJECT_QUOTA).",
        )


def insert_file(
    session: Session, release: Release, facts: FileFacts, *, via: str, published: bool = True
) -> File:
    row = File(
        release_id=release.id,
        filename=facts.filename,
        size=facts.size,
        sha256=facts.sha256,
        blake2_256=facts.blake2_256,
        md5=facts.md5,
        upload_time=datetime.now(UTC),
        packagetype=facts.packagetype,
        python_version=facts.python_version,
        requires_python=facts.requires_python,
        metadata_sha256=facts.metadata_sha256,
        attestations=facts.attestations,
        publisher=facts.publisher,
        published=published,
        uploaded_via=via,
    )
    session.add(row)
    session.flush()
    return row


def publish_file(
    engine: Engine,
    store: BlobStore,
    vf: VerifiedFile,
    *,
    via: str,
    quota: int = 0,
    conflict_status: int = 400,
    blob_stored: bool = False,
) -> Published:
    """Make one verified file visible, or explain (as a Problem) why it cannot be."""
    with read_session(engine) as s:
        done = _existing(s, vf, conflict_status)
    if done is not None:
        vf.spooled.discard()
        return done
    store_blobs(store, vf, blob_stored=blob_stored)

    def transaction(s: Session) -> Published:
        done = _existing(s, vf, conflict_status)
        if done is not None:
            return done
        project = get_or_create_project(s, vf.metadata.name)
        if project.reserved_by is not None:
            raise Problem(
                409,
                "project-reserved",
                "Project name reserved",
                f"{project.name!r} is reserved by an Upload 2.0 session that has not been "
                "published yet.",
            )
        facts = FileFacts.of(vf)
        release = get_or_create_release(s, project, facts)
        check_quota(s, project, facts.size, quota)
        insert_file(s, release, facts, via=via)
        journal.record(s, project, f"add {vf.dist.packagetype} file {vf.filename}")
        search.refresh(s, project)
        return Published(vf.filename, vf.spooled.digests.sha256, created=True)

    return retrying(engine, transaction, durable=True)
