"""The staging area: where a file-upload session's bytes wait for ``complete``.

Every mechanism stages under ``staging/<session id>/<file id>`` (multipart parts on the local
backend under ``<that>.parts/<n>``). A staged key belongs to exactly one file-upload session, and
it may receive bytes only while that file is ``pending`` in an ``open`` (or ``error``) session,
neither of them expired. After ``complete``, cancel, delete or expiry its URLs stop working on
the local backend (the signed endpoint asks ``accepts_bytes``); on S3 a pre-signed PUT cannot be
revoked, so garbage collection removes whatever a late PUT recreates (``live_files``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pallet.core.sessions import FileState, SessionState
from pallet.db.clock import aware, now
from pallet.db.models import FileUploadSession, UploadSession
from pallet.db.session import read_session

PREFIX = "staging"
_OWNED = re.compile(r"^staging/([0-9a-f]{1,64})/([0-9a-f]{1,64})(?:\.parts/[0-9]+)?$")

#: File states whose staged bytes are still needed: being uploaded, or being verified.
LIVE_FILE_STATES = (FileState.PENDING, FileState.PROCESSING)
_ACCEPTING_SESSION_STATES = (SessionState.OPEN, SessionState.ERROR)


def staging_key(session_id: str, file_id: str) -> str:
    return f"{PREFIX}/{session_id}/{file_id}"


def owner(key: str) -> tuple[str, str] | None:
    """(session id, file id) of a staged key, or None for keys outside the staging layout."""
    m = _OWNED.match(key)
    return (m.group(1), m.group(2)) if m else None


def accepts_bytes(s: Session, key: str) -> bool:
    """May a pre-signed PUT store ``key`` now? Keys outside ``staging/`` (``uv publish
    --direct``'s) are not tied to a session and always may."""
    found = owner(key)
    if found is None:
        return not key.startswith(PREFIX + "/")
    sid, fid = found
    row = s.execute(
        select(
            FileUploadSession.status,
            FileUploadSession.expires_at,
            UploadSession.status,
            UploadSession.expires_at,
        )
        .join(UploadSession, UploadSession.id == FileUploadSession.session_id)
        .where(FileUploadSession.id == fid, FileUploadSession.session_id == sid)
    ).first()
    if row is None:
        return False
    file_status, file_expires, session_status, session_expires = row
    moment = now()
    return (
        file_status == FileState.PENDING
        and aware(file_expires) > moment
        and session_status in _ACCEPTING_SESSION_STATES
        and aware(session_expires) > moment
    )


def live_files(engine: Engine, keys: Iterable[str]) -> set[str]:
    """The staged keys among ``keys`` whose file-upload session still needs them."""
    owners = {key: owner(key) for key in keys}
    fids = sorted({o[1] for o in owners.values() if o is not None})
    live: set[tuple[str, str]] = set()
    with read_session(engine) as s:
        for start in range(0, len(fids), 500):
            rows = s.execute(
                select(FileUploadSession.session_id, FileUploadSession.id).where(
                    FileUploadSession.id.in_(fids[start : start + 500]),
                    FileUploadSession.status.in_(LIVE_FILE_STATES),
                )
            )
            live.update((sid, fid) for sid, fid in rows)
    return {key for key, o in owners.items() if o is not None and o in live}
