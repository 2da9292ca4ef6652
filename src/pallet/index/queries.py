"""Load read-path models from the database. Only published files of visible projects show."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from pallet.db import claims
from pallet.db.models import File, JournalEntry, Project, Release
from pallet.index.model import FileEntry, ProjectList, ProjectPage


def file_url(sha256: str, filename: str) -> str:
    """Relative to a ``.../simple/<project>/`` page, so it works behind any prefix or proxy."""
    return f"../../files/{sha256}/{filename}"


def provenance_url(project: str, version: str, filename: str) -> str:
    """PEP 740's ``/integrity/...`` URL, relative to the project page like ``file_url``."""
    return f"../../integrity/{project}/{version}/{filename}/provenance"


def _version_key(version: str) -> tuple:
    try:
        return (0, Version(version))
    except InvalidVersion:  # pragma: no cover - versions are validated on upload
        return (1, version)


# Statements are built once: constructing them per request cost more than running them.
_VISIBLE_PROJECT = select(Project).where(
    Project.normalized_name == bindparam("name"), Project.reserved_by.is_(None)
)
_PAGE_FILES = (
    select(
        File.filename,
        File.sha256,
        File.size,
        File.upload_time,
        File.requires_python,
        File.yanked,
        File.yanked_reason,
        File.metadata_sha256,
        File.publisher.isnot(None).label("attested"),
        Release.version,
        Release.yanked.label("release_yanked"),
        Release.yanked_reason.label("release_yanked_reason"),
    )
    .join(Release, File.release_id == Release.id)
    .where(Release.project_id == bindparam("project_id"), File.published.is_(True))
)


def visible_project(session: Session, normalized: str) -> Project | None:
    return session.execute(_VISIBLE_PROJECT, {"name": normalized}).scalar_one_or_none()


def project_page(
    session: Session, project: Project, extra_files: list | None = None
) -> ProjectPage:
    """The page model; ``extra_files`` (the stage preview's staged files) are rows of the same
    shape as the query's: attributes named like its labels."""
    rows = session.execute(_PAGE_FILES, {"project_id": project.id}).all()
    rows = list(rows) + list(extra_files or [])
    keys = {r.version: _version_key(r.version) for r in rows}
    rows.sort(key=lambda r: (keys[r.version], r.filename))
    files = []
    for r in rows:
        yanked = None
        if r.yanked:
            yanked = r.yanked_reason or ""
        elif r.release_yanked:
            yanked = r.release_yanked_reason or ""
        files.append(
            FileEntry(
                filename=r.filename,
                url=file_url(r.sha256, r.filename),
                sha256=r.sha256,
                size=r.size,
                upload_time=r.upload_time,
                requires_python=r.requires_python,
                yanked=yanked,
                core_metadata_sha256=r.metadata_sha256,
                provenance_url=(
                    provenance_url(project.normalized_name, r.version, r.filename)
                    if getattr(r, "attested", False)
                    else None
                ),
            )
        )
    versions = sorted(keys, key=keys.__getitem__)
    return ProjectPage(project.name, project.normalized_name, project.last_serial, files, versions,
                       claims.namespaces_of(session, project.normalized_name, project.created))  # fmt: skip


def index_serial(session: Session) -> int:
    return session.execute(select(func.coalesce(func.max(JournalEntry.id), 0))).scalar_one()


def project_list(session: Session) -> ProjectList:
    serial = index_serial(session)
    rows = session.execute(
        select(Project.name, Project.normalized_name)
        .where(Project.reserved_by.is_(None))
        .order_by(Project.normalized_name)
    ).all()
    return ProjectList(serial, [(r.name, r.normalized_name) for r in rows])
