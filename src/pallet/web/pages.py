"""What each page of the web UI shows, read from the database: plain data, no HTML.

Visibility is the read path's: only published files of visible projects, and on a private index
or for a scoped token only the projects the principal may read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from packaging.version import InvalidVersion, Version
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pallet.auth.tokens import Principal
from pallet.core.sessions import FileState, SessionState
from pallet.db.models import File, FileUploadSession, Project, Release, UploadSession
from pallet.index.queries import index_serial, visible_project

LATEST = 12  # uploads on the home page


@dataclass(frozen=True)
class FileRow:
    filename: str
    size: int
    sha256: str
    upload_time: datetime
    packagetype: str
    uploaded_via: str
    provenance: bool
    yanked: bool


@dataclass(frozen=True)
class ReleaseRow:
    id: int
    version: str
    created: datetime
    yanked: bool
    yanked_reason: str | None
    prerelease: bool


@dataclass(frozen=True)
class ProjectView:
    name: str
    normalized_name: str
    serial: int
    release: ReleaseRow  # the one shown
    info: dict[str, Any]
    releases: list[ReleaseRow]  # newest first
    files: list[FileRow]


@dataclass(frozen=True)
class Home:
    serial: int
    projects: int
    files: int
    latest: list[tuple[str, str, str, datetime]]  # name, normalized, version, upload time


@dataclass(frozen=True)
class StagedSession:
    id: str
    project: str
    version: str
    status: str
    expires_at: datetime
    stage_token: str
    files: list[tuple[str, str, int]] = field(default_factory=list)  # filename, status, size


def _readable(principal: Principal | None):  # noqa: ANN202 - a SQL condition
    if principal is None or principal.projects is None:
        return Project.reserved_by.is_(None)
    return Project.reserved_by.is_(None) & Project.normalized_name.in_(sorted(principal.projects))


def home(s: Session, principal: Principal | None) -> Home:
    visible = _readable(principal)
    projects = s.execute(select(func.count()).select_from(Project).where(visible)).scalar_one()
    published = (
        select(File.filename, File.upload_time, Project.name, Project.normalized_name,
               Release.version)
        .join(Release, File.release_id == Release.id)
        .join(Project, Release.project_id == Project.id)
        .where(visible, File.published.is_(True))
    )  # fmt: skip
    files = s.execute(select(func.count()).select_from(published.subquery())).scalar_one()
    latest = s.execute(published.order_by(File.upload_time.desc()).limit(LATEST)).all()
    return Home(
        index_serial(s),
        projects,
        files,
        [(r.name, r.normalized_name, r.version, r.upload_time) for r in latest],
    )


def _key(version: str) -> tuple:
    try:
        return (1, Version(version))
    except InvalidVersion:  # pragma: no cover - versions are validated on upload
        return (0, version)


def _prerelease(version: str) -> bool:
    try:
        return Version(version).is_prerelease
    except InvalidVersion:  # pragma: no cover
        return False


def project(s: Session, normalized: str, version: str | None = None) -> ProjectView | None:
    """A project page (``version`` None: the latest release, not yanked and final if any)."""
    row = visible_project(s, normalized)
    if row is None:
        return None
    releases = [
        ReleaseRow(r.id, r.version, r.created, r.yanked, r.yanked_reason, _prerelease(r.version))
        for r in s.execute(
            select(Release).where(
                Release.project_id == row.id,
                select(File.id)
                .where(File.release_id == Release.id, File.published.is_(True))
                .exists(),
            )
        ).scalars()
    ]
    if not releases:
        return None
    releases.sort(key=lambda r: _key(r.version), reverse=True)
    if version is None:
        shown = next((r for r in releases if not r.yanked and not r.prerelease), None)
        shown = shown or next((r for r in releases if not r.yanked), releases[0])
    else:
        from packaging.utils import canonicalize_version

        try:
            wanted = canonicalize_version(version, strip_trailing_zero=True)
        except InvalidVersion:
            return None
        shown = next(
            (
                r
                for r in releases
                if canonicalize_version(r.version, strip_trailing_zero=True) == wanted
            ),
            None,
        )
        if shown is None:
            return None
    info = s.execute(select(Release.info).where(Release.id == shown.id)).scalar_one() or {}
    files = [
        FileRow(
            f.filename,
            f.size,
            f.sha256,
            f.upload_time,
            f.packagetype,
            f.uploaded_via,
            f.publisher is not None and bool(f.attestations),
            f.yanked or shown.yanked,
        )  # fmt: skip
        for f in s.execute(
            select(File)
            .where(File.release_id == shown.id, File.published.is_(True))
            .order_by(File.packagetype, File.filename)
        ).scalars()
    ]
    return ProjectView(row.name, row.normalized_name, row.last_serial, shown, info, releases, files)


def staged_sessions(s: Session, principal: Principal) -> list[StagedSession]:
    """Open publishing sessions of the projects ``principal`` may upload to."""
    query = select(UploadSession).where(UploadSession.status == SessionState.OPEN)
    if principal.projects is not None:
        query = query.where(UploadSession.normalized_name.in_(sorted(principal.projects)))
    sessions = s.execute(query.order_by(UploadSession.created.desc()).limit(100)).scalars().all()
    files: dict[str, list[tuple[str, str, int]]] = {session.id: [] for session in sessions}
    for f in s.execute(  # one query for the files of every session shown
        select(
            FileUploadSession.session_id,
            FileUploadSession.filename,
            FileUploadSession.status,
            FileUploadSession.size,
        )
        .where(
            FileUploadSession.session_id.in_(list(files)),
            FileUploadSession.status != FileState.CANCELED,
        )
        .order_by(FileUploadSession.filename)
    ):
        files[f.session_id].append((f.filename, f.status, f.size))
    return [
        StagedSession(
            session.id,
            session.project_name,
            session.version,
            session.status,
            session.expires_at,
            session.stage_token,
            files[session.id],
        )
        for session in sessions
    ]
