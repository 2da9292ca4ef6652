"""File-upload sessions: create, complete (verify, then stage at the content address), extend.

Bytes of a completed file already sit at their content address, but nothing points at them
from ``files``, so they are invisible until publish inserts the rows; publish is therefore one
database transaction, atomic by construction.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from packaging.version import Version
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from pallet.core.filenames import parse_dist_filename
from pallet.core.problems import Problem, ProblemError
from pallet.core.rules import UploadRules
from pallet.core.sessions import (
    FileEvent,
    FileState,
    SessionEvent,
    next_file_state,
    next_session_state,
)
from pallet.db.clock import aware, now
from pallet.db.models import File, FileUploadSession, UploadSession
from pallet.services import Services
from pallet.upload.mechanisms import REGISTRY
from pallet.upload.v2.sessions import extended


def create(
    s: Session,
    services: Services,
    session: UploadSession,
    filename: str,
    size: int,
    hashes: dict[str, str],
    mechanism: str,
    rules: UploadRules,
) -> FileUploadSession:
    next_session_state(session.status, SessionEvent.CHANGE_FILES)
    if mechanism not in REGISTRY:
        raise Problem(
            422,
            "unsupported-mechanism",
            "Unsupported upload mechanism",
            f"{mechanism!r} is not offered here; use one of {sorted(REGISTRY)}.",
        )
    dist = parse_dist_filename(filename, rules)  # 400 on a bad name
    mismatches = []
    if dist.project != session.normalized_name:
        mismatches.append(
            ProblemError("filename", f"project {dist.project!r} is not {session.normalized_name!r}")
        )
    if dist.version != Version(session.version):
        mismatches.append(
            ProblemError("filename", f"version {dist.version} is not {session.version}")
        )
    if mismatches:
        raise Problem(
            400,
            "filename-mismatch",
            "File does not belong to this session",
            "A session's files must carry its project name and version.",
            errors=mismatches,
        )
    published = s.execute(select(File.published).where(File.filename == filename)).first()
    if published is not None:
        raise Problem(
            409,
            "file-exists" if published.published else "filename-reserved",
            "File already exists",
            f"{filename!r} is already published (or being published); files are immutable.",
        )
    live = s.execute(
        select(FileUploadSession).where(
            FileUploadSession.session_id == session.id,
            FileUploadSession.live_filename == filename,
        )
    ).scalar_one_or_none()
    if live is not None:
        raise Problem(
            409,
            "file-in-session",
            "File already in this session",
            f"{filename!r} has a file upload session in state '{live.status}'; delete it "
            "before uploading a replacement.",
        )
    created = now()
    fs = FileUploadSession(
        id=secrets.token_hex(16),
        session_id=session.id,
        filename=filename,
        live_filename=filename,
        size=size,
        hashes=hashes,
        mechanism=mechanism,
        status=FileState.PENDING,
        created=created,
        expires_at=min(
            created + timedelta(seconds=services.settings.file_session_lifetime),
            aware(session.expires_at),
        ),
    )
    REGISTRY[mechanism].prepare(services, fs)
    s.add(fs)
    s.flush()
    return fs


#: Built once: every file endpoint loads its file.
_BY_ID = select(FileUploadSession).where(
    FileUploadSession.id == bindparam("fid"), FileUploadSession.session_id == bindparam("sid")
)


def load(s: Session, session: UploadSession, fid: str) -> FileUploadSession:
    fs = s.execute(_BY_ID, {"fid": fid, "sid": session.id}).scalar_one_or_none()
    if fs is None:
        raise Problem(
            404,
            "file-session-not-found",
            "No such file upload session",
            "This file upload session does not exist in this publishing session.",
        )
    if fs.status == FileState.PENDING and aware(fs.expires_at) <= now():
        fs.status = FileState.CANCELED
        fs.live_filename = None
        fs.notices = ["The file upload session expired."]
    return fs


def check_transfer(session: UploadSession, fs: FileUploadSession) -> None:
    next_session_state(session.status, SessionEvent.CHANGE_FILES)
    next_file_state(fs.status, FileEvent.TRANSFER)


def extend(session: UploadSession, fs: FileUploadSession, seconds: int) -> None:
    fs.status = next_file_state(fs.status, FileEvent.EXTEND)
    fs.expires_at = extended(fs.expires_at, seconds, session.expires_at)
