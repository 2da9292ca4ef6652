"""Release management after publication: yank and unyank (PEP 592). Yanked files stay listed and
downloadable; installers skip them unless pinned exactly."""

from __future__ import annotations

from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion
from sqlalchemy import Engine, select

from pallet.core.problems import Problem
from pallet.db import journal, search
from pallet.db.models import File, Project, Release
from pallet.db.session import write_session


def set_yanked(
    engine: Engine,
    project_name: str,
    version: str,
    *,
    yanked: bool,
    reason: str | None = None,
    filename: str | None = None,
) -> list[str]:
    """Yank (or unyank) a whole release, or one file of it. Returns the affected filenames."""
    try:
        canonical = canonicalize_version(version, strip_trailing_zero=True)
    except InvalidVersion:
        raise Problem(400, "invalid-version", "Invalid version", f"{version!r}") from None
    with write_session(engine, durable=True) as s:
        row = s.execute(
            select(Project, Release)
            .join(Release, Release.project_id == Project.id)
            .where(
                Project.normalized_name == canonicalize_name(project_name),
                Release.canonical_version == canonical,
            )
        ).first()
        if row is None:
            raise Problem(404, "not-found", "No such release", f"{project_name} {version}")
        project, release = row
        files = s.execute(select(File).where(File.release_id == release.id)).scalars().all()
        if filename is not None:
            files = [f for f in files if f.filename == filename]
            if not files:
                raise Problem(404, "not-found", "No such file", f"{filename} in {version}")
            for f in files:
                f.yanked, f.yanked_reason = yanked, reason if yanked else None
        else:
            release.yanked, release.yanked_reason = yanked, reason if yanked else None
            if not yanked:
                for f in files:
                    f.yanked, f.yanked_reason = False, None
        what = filename or f"release {release.version}"
        journal.record(s, project, f"{'yank' if yanked else 'unyank'} {what}")
        search.refresh(s, project)  # the latest release, whose summary counts, may have changed
        return [f.filename for f in files]
