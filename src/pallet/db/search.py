"""Keeping the search table (``project_search``, migration 0007) in step with what is visible.

``refresh`` runs in the transaction that makes a release visible or yanks one (the upload paths,
``pallet import``, ``pallet.releases``), so search never lists what the index does not serve;
``pallet.index.search`` reads it. ``refresh_missing`` (a step of every garbage-collection sweep)
adds the rows a replica of an older release did not write.
"""

from __future__ import annotations

from typing import Any

from packaging.version import InvalidVersion, Version
from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

from pallet.db.models import File, Project, ProjectSearch, Release


def record(session: Session, project_id: int, name: str, summary: str | None) -> None:
    """Make the project findable by ``name`` and ``summary`` (insert or replace its row). An
    unchanged row is left alone, so republishing does not rewrite the full-text index."""
    # NUL is valid in metadata and JSON but no PostgreSQL text holds it.
    values = {
        "project_id": project_id,
        "name": name.replace("\x00", ""),
        "summary": (summary if isinstance(summary, str) else "").replace("\x00", ""),
    }
    # Each dialect's own upsert, imported here: a server on SQLite never loads PostgreSQL's.
    stmt: Any
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        stmt = postgresql_insert(ProjectSearch).values(values)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(ProjectSearch).values(values)
    changed = (ProjectSearch.name != stmt.excluded.name) | (
        ProjectSearch.summary != stmt.excluded.summary
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[ProjectSearch.project_id],
            set_={"name": stmt.excluded.name, "summary": stmt.excluded.summary},
            where=changed,
        )
    )


_RELEASES = (
    select(Release.id, Release.version, Release.yanked)
    .where(Release.project_id == bindparam("project_id"))
    .where(exists().where(File.release_id == Release.id, File.published.is_(True)))
)


def refresh(session: Session, project: Project) -> None:
    """``record`` the project with its latest release's summary, chosen as the JSON API chooses
    ``info``: a backport published after a newer release does not replace the summary."""
    rows = session.execute(_RELEASES, {"project_id": project.id}).all()
    if not rows:  # a name registered with no files yet: visible, and found by its name
        record(session, project.id, project.name, None)
        return
    latest = max(rows, key=lambda r: _latest_key(r.version, r.yanked))
    # That release's whole ``info``, parsed by Python: PostgreSQL cannot take a "\u0000" of
    # the JSON (valid in metadata) out as text, with ``->>`` or even ``->``.
    info = session.execute(select(Release.info).where(Release.id == latest.id)).scalar_one()
    summary = info.get("summary") if isinstance(info, dict) else None
    record(session, project.id, project.name, summary)


_MISSING = (
    select(Project)
    .where(Project.reserved_by.is_(None))
    .where(~exists().where(ProjectSearch.project_id == Project.id))
    .order_by(Project.id)
    .limit(bindparam("limit"))
)


def refresh_missing(session: Session, limit: int = 500) -> int:
    """``refresh`` up to ``limit`` visible projects that have no search row; how many. Bounded,
    so one sweep's transaction stays short; the next sweep goes on."""
    projects = session.scalars(_MISSING, {"limit": limit}).all()
    for project in projects:
        refresh(session, project)
    return len(projects)


def _latest_key(version: str, yanked: bool) -> tuple:
    try:
        v = Version(version)
    except InvalidVersion:  # pragma: no cover - versions are validated on upload
        return (not yanked, False, 0, Version("0"))
    return (not yanked, not v.is_prerelease, 1, v)
