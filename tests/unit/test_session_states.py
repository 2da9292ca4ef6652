"""Both PEP 694 state machines: every allowed transition and every forbidden one.

The expected tables below are written out independently from the PEP's transition tables
(§ "Publishing session states" / "File upload session states"), so a change to
``pallet.core.sessions`` that drifts from the PEP fails here.
"""

from __future__ import annotations

import itertools

import pytest

from pallet.core.problems import Problem
from pallet.core.sessions import (
    FileEvent,
    FileState,
    SessionEvent,
    SessionState,
    next_file_state,
    next_session_state,
)

EXPECTED_SESSION = {
    ("open", "change-files"): "open",
    ("open", "publish-done"): "published",
    ("open", "publish-deferred"): "processing",
    ("open", "publish-failed"): "open",  # synchronous failure leaves open as open
    ("open", "cancel"): "canceled",
    ("open", "extend"): "open",
    ("processing", "processing-succeeded"): "published",
    ("processing", "processing-failed"): "error",
    ("error", "change-files"): "error",
    ("error", "publish-done"): "published",
    ("error", "publish-deferred"): "processing",
    ("error", "publish-failed"): "error",  # and error stays error
    ("error", "cancel"): "canceled",
    ("error", "extend"): "error",
}

EXPECTED_FILE = {
    ("pending", "transfer"): "pending",
    ("pending", "complete-done"): "completed",
    ("pending", "complete-deferred"): "processing",
    ("pending", "complete-failed"): "error",
    ("pending", "delete"): "canceled",
    ("pending", "extend"): "pending",
    ("processing", "processing-succeeded"): "completed",
    ("processing", "processing-failed"): "error",
    ("completed", "delete"): "canceled",
    ("error", "delete"): "canceled",
}


@pytest.mark.parametrize(("state", "event"), list(itertools.product(SessionState, SessionEvent)))
def test_publishing_session_transition(state, event):
    expected = EXPECTED_SESSION.get((state.value, event.value))
    if expected is None:
        with pytest.raises(Problem) as exc:
            next_session_state(state, event)
        assert exc.value.status == 409
        assert exc.value.extra["state"] == state.value
    else:
        assert next_session_state(state, event) == expected


@pytest.mark.parametrize(("state", "event"), list(itertools.product(FileState, FileEvent)))
def test_file_upload_session_transition(state, event):
    expected = EXPECTED_FILE.get((state.value, event.value))
    if expected is None:
        with pytest.raises(Problem) as exc:
            next_file_state(state, event)
        assert exc.value.status == 409
    else:
        assert next_file_state(state, event) == expected


def test_pep694_must_processing_session_cannot_be_canceled():
    with pytest.raises(Problem) as exc:
        next_session_state("processing", SessionEvent.CANCEL)
    assert exc.value.status == 409


def test_pep694_must_processing_file_cannot_be_deleted():
    with pytest.raises(Problem) as exc:
        next_file_state("processing", FileEvent.DELETE)
    assert exc.value.status == 409


def test_terminal_states_accept_nothing():
    for state in ("published", "canceled"):
        for event in SessionEvent:
            with pytest.raises(Problem):
                next_session_state(state, event)
    for event in FileEvent:
        with pytest.raises(Problem):
            next_file_state("canceled", event)
