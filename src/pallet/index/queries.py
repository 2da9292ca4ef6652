"""Load read-path models from the database. Only published files of visible projects show."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pallet.db.models import File, JournalEntry, Project, Release
from pallet.index.model import FileEntry, ProjectList, ProjectPage


def file_url(sha256: str, filename: str) -> str:
    """Relative to a ``.../simple/<project>/`` page, so it works behind any prefix or proxy."""
    return f"../../files/{sha256}/{filename}"


def _version_key(version: str) -> tuple:
    try:
        return (0, Version(version))
    except InvalidVersion:  # pragma: no cover - versions are validated on upload
        return (1, version)


def visible_project(session: Session, normalized: str) -> Project | None:
    return session.execute(
        select(Project).where(Project.normalized_name == normalized, Project.reserved_by.is_(None))
    ).scalar_one_or_none()


def project_page(session: Session, project: Project, extra_files: list | None = None) -> ProjectPage:
    rows = session.execute(
        select(File, Release.version, Release.yanked, Release.yanked_reason)
        .join(Release, File.release_id == Release.id)
        .where(Release.project_id == project.id, File.published.is_(True))
    ).all()
    rows = list(rows) + list(extra_files or [])
    rows.sort(key=lambda r: (_version_key(r[1]), r[0].filename))
    files = []
    for f, _version, release_yanked, release_reason in rows:
        yanked = None
        if f.yanked:
            yanked = f.yanked_reason or ""
        elif release_yanked:
            yanked = release_reason or ""
        files.append(
            FileEntry(
                filename=f.filename,
                url=file_url(f.sha256, f.filename),
                sha256=f.sha256,
                size=f.size,
                upload_time=f.upload_time,
                requires_python=f.requires_python,
                yanked=yanked,
                core_metadata_sha256=f.metadata_sha256,
            )
        )
    versions = sorted({r[1] for r in rows}, key=_version_key)
    return ProjectPage(project.name, project.normalized_name, project.last_serial, files, versions)


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
