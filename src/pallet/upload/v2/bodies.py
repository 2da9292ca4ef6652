"""Response bodies of both session kinds (PEP 694 shapes), from database rows."""

from __future__ import annotations

from typing import Any

from pallet.core.sessions import FileState
from pallet.core.upload2 import META, rfc3339
from pallet.db.models import FileUploadSession, UploadSession
from pallet.services import Services
from pallet.upload.links import Links
from pallet.upload.mechanisms import REGISTRY, advertised


def session_body(
    links: Links, session: UploadSession, files: list[FileUploadSession]
) -> dict[str, Any]:
    sid = session.id
    body: dict[str, Any] = {
        "meta": META,
        "links": {
            "session": links.session(sid),
            "upload": links.upload(sid),
            "publish": links.publish(sid),
            "extend": links.extend(sid),
            "stage": links.stage(session.stage_token),
        },
        "mechanisms": advertised(),
        "session-token": session.stage_token,
        "expires-at": rfc3339(session.expires_at),
        "status": session.status,
        "files": {},
    }
    for fs in files:
        if fs.status == FileState.CANCELED:
            continue  # canceled entries leave the map (PEP 694)
        entry: dict[str, Any] = {"status": fs.status, "link": links.file(sid, fs.id)}
        if fs.notices:
            entry["notices"] = fs.notices
        body["files"][fs.filename] = entry
    if session.notices:
        body["notices"] = session.notices
    return body


def file_body(
    svc: Services, links: Links, session: UploadSession, fs: FileUploadSession
) -> dict[str, Any]:
    mechanism = REGISTRY.get(fs.mechanism)
    return {
        "meta": META,
        "links": {
            "file-upload-session": links.file(session.id, fs.id),
            "complete": links.file_action(session.id, fs.id, "complete"),
            "extend": links.file_action(session.id, fs.id, "extend"),
        },
        "status": fs.status,
        "expires-at": rfc3339(fs.expires_at),
        "mechanism": (
            mechanism.describe(svc, links, fs) if mechanism else {"identifier": fs.mechanism}
        ),
    }
