"""Publishing sessions: create, load (with lazy expiry), extend, cancel.

Every function runs in one write transaction and re-checks the caller's *current* upload
permission for the session's project (PEP 694 contemporaneous authorization): sessions are not
bound to the credential that created them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from packaging.utils import canonicalize_version
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from pallet.auth.tokens import Principal
from pallet.config import Settings
from pallet.core.problems import Problem
from pallet.core.routing import Claim
from pallet.core.sessions import (
    FileEvent,
    FileState,
    SessionEvent,
    SessionState,
    next_file_state,
    next_session_state,
)
from pallet.db import claims
from pallet.db.clock import aware, now
from pallet.db.models import FileUploadSession, Project, UploadSession
from pallet.storage.base import content_sha


def not_found() -> Problem:
    return Problem(
        404,
        "session-not-found",
        "No such session",
        "This session does not exist or is past its retention period.",
    )


def forbidden(project: str) -> Problem:
    return Problem(
        403,
        "forbidden",
        "Not allowed",
        f"The credentials used may not upload to project {project!r}.",
    )


def authorize(principal: Principal, normalized_name: str) -> None:
    if not principal.can_upload(normalized_name):
        raise forbidden(normalized_name)


@dataclass
class Purge:
    """Blob keys to delete once the transaction that orphaned them has committed."""

    staged_keys: list[str]
    content_sha256: list[str]
    multipart: list[tuple[str, str]] = field(default_factory=list)  # (key, upload id) to abort


#: Built once (opening a session runs both): the columns needed, not ORM objects.
_LIVE = select(UploadSession.id, UploadSession.status).where(
    UploadSession.live_key == bindparam("key")
)
_PROJECT = select(Project.name, Project.reserved_by).where(
    Project.normalized_name == bindparam("normalized")
)


def live_key(normalized: str, canonical_version: str) -> str:
    return f"{normalized}=={canonical_version}"


def create(
    s: Session, settings: Settings, principal: Principal, name: str, normalized: str, version
) -> UploadSession:  # noqa: ANN001
    authorize(principal, normalized)
    canonical = canonicalize_version(version, strip_trailing_zero=True)
    key = live_key(normalized, canonical)
    existing = s.execute(_LIVE, {"key": key}).one_or_none()
    if existing is not None:
        raise Problem(
            409,
            "session-exists",
            "A session for this release is already open",
            f"Session for {normalized} {version} exists in state '{existing.status}'; join it "
            "at the Location given.",
            extra={"session-id": existing.id},
        )
    sid = secrets.token_hex(16)
    project = s.execute(_PROJECT, {"normalized": normalized}).one_or_none()
    reserved = False
    if project is None:
        # First release: reserve the name for the life of the stage (unique constraint).
        s.add(Project(name=name, normalized_name=normalized, created=now(), reserved_by=sid))
        # Claimed for good: a cancelled first release still says the name is private.
        claims.add(s, Claim(normalized, prefix=False), "upload")
        reserved = True
    elif project.reserved_by is not None:
        raise Problem(
            409,
            "project-reserved",
            "Project name reserved",
            f"{normalized!r} is reserved by another session that has not been published.",
        )
    created = now()
    session = UploadSession(
        id=sid,
        project_name=name if project is None else project.name,  # None: reserved just now
        normalized_name=normalized,
        version=str(version),
        canonical_version=canonical,
        status=SessionState.OPEN,
        live_key=key,
        stage_token=secrets.token_urlsafe(24),
        reserved_project=reserved,
        created=created,
        expires_at=created + timedelta(seconds=settings.session_lifetime),
    )
    s.add(session)
    s.flush()
    return session


def load(
    s: Session, sid: str, principal: Principal, *, for_update: bool = False
) -> tuple[UploadSession, Purge | None]:
    """The session, authorized, with expiry applied (an expired session is canceled)."""
    session = _authorized(s, sid, principal, for_update)
    purge = cancel(s, session, notice=EXPIRED) if _lapsed(session) else None
    return session, purge


def load_current(s: Session, sid: str, principal: Principal) -> UploadSession | None:
    """The session, authorized, for a read-only transaction; None when it has lapsed and must
    be canceled first (``load``, in a write transaction)."""
    session = _authorized(s, sid, principal, False)
    return None if _lapsed(session) else session


EXPIRED = "The session expired and was canceled."


#: Built once: every session endpoint loads its session, some twice (read, then under a lock).
_BY_ID = select(UploadSession).where(UploadSession.id == bindparam("sid"))
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()


def _authorized(s: Session, sid: str, principal: Principal, for_update: bool) -> UploadSession:
    stmt = _BY_ID_FOR_UPDATE if for_update else _BY_ID
    session = s.execute(stmt, {"sid": sid}).scalar_one_or_none()
    if session is None:
        raise not_found()
    authorize(principal, session.normalized_name)
    return session


def _lapsed(session: UploadSession) -> bool:
    return (
        session.status in (SessionState.OPEN, SessionState.ERROR)
        and aware(session.expires_at) <= now()
    )


def files_of(s: Session, session: UploadSession) -> list[FileUploadSession]:
    return list(
        s.execute(
            select(FileUploadSession)
            .where(FileUploadSession.session_id == session.id)
            .order_by(FileUploadSession.created, FileUploadSession.filename)
        ).scalars()
    )


def cancel(s: Session, session: UploadSession, notice: str | None = None) -> Purge:
    """Cancel (DELETE or expiry): every file canceled, a first-release name released."""
    session.status = next_session_state(session.status, SessionEvent.CANCEL)
    session.live_key = None
    session.finished = now()
    if notice:
        session.notices = [*(session.notices or []), notice]
    purge = Purge([], [])
    for fs in files_of(s, session):
        if fs.status != FileState.CANCELED:
            purge_file(fs, purge)
            fs.status = FileState.CANCELED
            fs.live_filename = None
    if session.reserved_project:
        project = s.execute(
            select(Project).where(
                Project.normalized_name == session.normalized_name,
                Project.reserved_by == session.id,
            )
        ).scalar_one_or_none()
        if project is not None:
            s.delete(project)
    return purge


def purge_staged(key: str, purge: Purge) -> None:
    """Queue a closed file's staged bytes for deletion, unless they sit at their content
    address (a pre-signed PUT's): identical bytes of another file may be stored there, so
    the orphan collector, which knows every reference, decides after its grace period."""
    if content_sha(key) is None:
        purge.staged_keys.append(key)


def purge_file(fs: FileUploadSession, purge: Purge) -> None:
    if fs.staged_key:
        purge_staged(fs.staged_key, purge)
        upload_id = (fs.mechanism_state or {}).get("upload-id")
        if upload_id and fs.status == FileState.PENDING:
            purge.multipart.append((fs.staged_key, upload_id))
    if fs.status == FileState.COMPLETED and fs.sha256:
        purge.content_sha256.append(fs.sha256)
        if fs.metadata_sha256:
            purge.content_sha256.append(fs.metadata_sha256)


def delete_file(fs: FileUploadSession, session: UploadSession) -> Purge:
    next_session_state(session.status, SessionEvent.CHANGE_FILES)
    new_status = next_file_state(fs.status, FileEvent.DELETE)
    purge = Purge([], [])
    purge_file(fs, purge)  # while the file still says what it was (a pending multipart upload)
    fs.status = new_status
    fs.live_filename = None
    fs.staged_key = None
    return purge


def extended(expires_at: datetime, seconds: int, cap: datetime) -> datetime:
    """PEP 694 extend: ``extend-for`` is a hint of any size; grant at most up to ``cap`` and
    never move expiry earlier. Only the granted part becomes a timedelta, so 10**20 seconds
    (past any datetime) is simply capped."""
    expires_at = aware(expires_at)
    room = (aware(cap) - expires_at).total_seconds()
    if seconds <= 0 or room <= 0:
        return expires_at
    return expires_at + timedelta(seconds=min(seconds, room))


def extend(session: UploadSession, settings: Settings, seconds: int) -> None:
    """Advisory: grant up to the lifetime cap, never move expiry earlier."""
    session.status = next_session_state(session.status, SessionEvent.EXTEND)
    cap = aware(session.created) + timedelta(seconds=settings.session_max_lifetime)
    session.expires_at = extended(session.expires_at, seconds, cap)
