"""PEP 694 state machines, as data: the publishing session and the file-upload session.

Every (state, event) pair not in a table is forbidden and answered ``409 Conflict`` with a
problem naming the state, which is what the PEP asks for each refused action. The web layer
asks ``next_state`` before it writes anything, so the tables are the single source of truth.
"""

from __future__ import annotations

from enum import StrEnum

from pallet.core.problems import Problem


class SessionState(StrEnum):
    OPEN = "open"
    PROCESSING = "processing"
    PUBLISHED = "published"
    ERROR = "error"
    CANCELED = "canceled"


class SessionEvent(StrEnum):
    CHANGE_FILES = "change-files"  # create, replace or delete a file upload session
    PUBLISH_DONE = "publish-done"  # publish succeeded synchronously (201)
    PUBLISH_DEFERRED = "publish-deferred"  # publish accepted for processing (202)
    PUBLISH_FAILED = "publish-failed"  # synchronous failure: the state does not move
    PROCESSING_SUCCEEDED = "processing-succeeded"
    PROCESSING_FAILED = "processing-failed"
    CANCEL = "cancel"  # DELETE, or expiry (a server-initiated cancel)
    EXTEND = "extend"


class FileState(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    ERROR = "error"
    CANCELED = "canceled"


class FileEvent(StrEnum):
    TRANSFER = "transfer"  # the mechanism moves bytes
    COMPLETE_DONE = "complete-done"  # 201
    COMPLETE_DEFERRED = "complete-deferred"  # 202
    COMPLETE_FAILED = "complete-failed"  # synchronous failure: the file is in error
    PROCESSING_SUCCEEDED = "processing-succeeded"
    PROCESSING_FAILED = "processing-failed"
    DELETE = "delete"  # cancel an upload or delete a finished file (also expiry)
    EXTEND = "extend"


S, SE = SessionState, SessionEvent
SESSION_TRANSITIONS: dict[tuple[SessionState, SessionEvent], SessionState] = {
    (S.OPEN, SE.CHANGE_FILES): S.OPEN,
    (S.OPEN, SE.PUBLISH_DONE): S.PUBLISHED,
    (S.OPEN, SE.PUBLISH_DEFERRED): S.PROCESSING,
    (S.OPEN, SE.PUBLISH_FAILED): S.OPEN,
    (S.OPEN, SE.CANCEL): S.CANCELED,
    (S.OPEN, SE.EXTEND): S.OPEN,
    (S.PROCESSING, SE.PROCESSING_SUCCEEDED): S.PUBLISHED,
    (S.PROCESSING, SE.PROCESSING_FAILED): S.ERROR,
    (S.ERROR, SE.CHANGE_FILES): S.ERROR,
    (S.ERROR, SE.PUBLISH_DONE): S.PUBLISHED,
    (S.ERROR, SE.PUBLISH_DEFERRED): S.PROCESSING,
    (S.ERROR, SE.PUBLISH_FAILED): S.ERROR,
    (S.ERROR, SE.CANCEL): S.CANCELED,
    (S.ERROR, SE.EXTEND): S.ERROR,
}

F, FE = FileState, FileEvent
FILE_TRANSITIONS: dict[tuple[FileState, FileEvent], FileState] = {
    (F.PENDING, FE.TRANSFER): F.PENDING,
    (F.PENDING, FE.COMPLETE_DONE): F.COMPLETED,
    (F.PENDING, FE.COMPLETE_DEFERRED): F.PROCESSING,
    (F.PENDING, FE.COMPLETE_FAILED): F.ERROR,
    (F.PENDING, FE.DELETE): F.CANCELED,
    (F.PENDING, FE.EXTEND): F.PENDING,
    (F.PROCESSING, FE.PROCESSING_SUCCEEDED): F.COMPLETED,
    (F.PROCESSING, FE.PROCESSING_FAILED): F.ERROR,
    (F.COMPLETED, FE.DELETE): F.CANCELED,
    (F.ERROR, FE.DELETE): F.CANCELED,
}

TERMINAL_SESSION_STATES = frozenset({S.PUBLISHED, S.CANCELED})
#: The publish precondition is an allow-list: only this file state may be published.
PUBLISHABLE_FILE_STATE = F.COMPLETED


def conflict(kind: str, state: str, event: str) -> Problem:
    return Problem(
        409,
        f"{kind}-state-conflict",
        f"Not allowed while the {kind} is {state}",
        f"'{event}' is not possible for a {kind} in state '{state}'.",
        extra={"state": state},
    )


def next_session_state(state: SessionState | str, event: SessionEvent) -> SessionState:
    key = (SessionState(state), event)
    if key not in SESSION_TRANSITIONS:
        raise conflict("session", str(key[0]), str(event))
    return SESSION_TRANSITIONS[key]


def next_file_state(state: FileState | str, event: FileEvent) -> FileState:
    key = (FileState(state), event)
    if key not in FILE_TRANSITIONS:
        raise conflict("file-upload", str(key[0]), str(event))
    return FILE_TRANSITIONS[key]
