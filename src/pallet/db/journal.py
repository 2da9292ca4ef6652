"""Every visible change goes through ``record``: it appends a journal row and stamps the project
with that serial, which invalidates cached index pages on every replica at once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from pallet.db.models import JournalEntry, Project


def record(session: Session, project: Project, action: str) -> int:
    entry = JournalEntry(project_id=project.id, action=action[:200], submitted=datetime.now(UTC))
    session.add(entry)
    session.flush()
    project.last_serial = entry.id
    return entry.id
