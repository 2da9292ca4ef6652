"""The staging area: where a file-upload session's bytes wait for ``complete``.

Mechanisms that receive bytes before their digest is known stage under
``staging/<session id>/<file id>`` (multipart parts on the local backend under
``<that>.parts/<n>``); the pre-signed PUT, whose sha256 is signed into its URL, stages at the
file's content address instead (``pallet.upload.mechanisms.presigned_put``). Either key may
receive bytes only while its file is ``pending`` in an ``open`` (or ``error``) session, neither
of them expired. After ``complete``, cancel, delete or expiry its URLs stop working on the local
backend (the signed endpoint asks ``accepts_bytes``; a content address's URL names its file in
a signed ``X-Pallet-Owner``); on S3 a pre-signed PUT cannot be revoked, so garbage collection
removes whatever a late PUT recreates (``live_files``, and the orphan collector for content
addresses).
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
from pallet.storage.base import content_sha

PREFIX = "staging"
_OWNED = re.compile(r"^staging/([0-9a-f]{1,64})/([0-9a-f]{1,64})(?:\.parts/[0-9]+)?$")
_OWNER = re.compile(r"^([0-9a-f]{1,64})/([0-9a-f]{1,64})$")

#: File states whose staged bytes are still needed: being uploaded, or being verified.
LIVE_FILE_STATES = (FileState.PENDING, FileState.PROCESSING)
_ACCEPTING_SESSION_STATES = (SessionState.OPEN, SessionState.ERROR)


def staging_key(session_id: str, file_id: str) -> str:
    return f"{PREFIX}/{session_id}/{file_id}"


def owner_of_key(key: str) -> tuple[str, str] | None:
    """(session id, file id) of a staged key, or None for keys outside the staging layout."""
    m = _OWNED.match(key)
    return (m.group(1), m.group(2)) if m else None


def owner_of(owner: str) -> tuple[str, str] | None:
    """(session id, file id) of a URL's ``<session id>/<file id>`` binding (None if malformed)."""
    m = _OWNER.match(owner)
    return (m.group(1), m.group(2)) if m else None


def accepts_bytes(s: Session, key: str, owner: str | None = None) -> bool:
    """May a pre-signed PUT store ``key`` now? A staged key names its file-upload session; a
    content address needs the ``owner`` (``<session id>/<file id>``) its URL was signed for.
    Other keys (``uv publish --direct``'s) are not tied to a session and always may."""
    found = owner_of(owner) if owner is not None else owner_of_key(key)
    if found is None:
        return owner is None and not key.startswith(PREFIX + "/") and content_sha(key) is None
    sid, fid = found
    row = s.execute(
        select(
            FileUploadSession.status,
            FileUploadSession.expires_at,
            FileUploadSession.staged_key,
            UploadSession.status,
            UploadSession.expires_at,
        )
        .join(UploadSession, UploadSession.id == FileUploadSession.session_id)
        .where(FileUploadSession.id == fid, FileUploadSession.session_id == sid)
    ).first()
    if row is None:
        return False
    file_status, file_expires, staged_key, session_status, session_expires = row
    moment = now()
    return (
        file_status == FileState.PENDING
        and (owner is None or staged_key == key)
        and aware(file_expires) > moment
        and session_status in _ACCEPTING_SESSION_STATES
        and aware(session_expires) > moment
    )


def live_files(engine: Engine, keys: Iterable[str]) -> set[str]:
    """The staged keys among ``keys`` whose file-upload session still needs them."""
    owners = {key: owner_of_key(key) for key in keys}
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
