"""On SQLite (WAL, ``synchronous=NORMAL``) a commit is flushed to disk only when it is made
under ``synchronous=FULL``. What makes a file visible for good must be: a publish, a legacy
upload. The steps of an Upload 2.0 session before it need not pay for a flush each (a lost
step is redone by the client; the publish's flush makes every commit before it durable too).

The transactions are told apart by asking SQLite, as the row that publishes a file is inserted,
which ``synchronous`` level is in force on that connection."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from tests.api.uploads import upload
from tests.api.v2 import Uploader
from tests.dists import make_wheel

HTTP = "http-post-bytes"


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:  # noqa: ANN001
    return f"sqlite:///{tmp_path / 'pallet.db'}"


class Statements:
    """The SQL sent to SQLite, each statement with the ``synchronous`` level SQLite itself
    reports in force on that connection as it runs."""

    LEVELS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}

    def __init__(self, engine) -> None:  # noqa: ANN001
        self.seen: list[tuple[str, str]] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement: str, *rest) -> None:  # noqa: ANN001
        text = " ".join(statement.split()).upper()
        (level,) = cursor.connection.execute("PRAGMA synchronous").fetchone()
        self.seen.append((text, self.LEVELS[level]))

    def levels_of(self, prefix: str) -> set[str]:
        return {level for text, level in self.seen if text.startswith(prefix)}

    def clear(self) -> None:
        self.seen.clear()


def test_publish_commits_durably_and_the_steps_before_it_do_not(index, tmp_path) -> None:  # noqa: ANN001
    statements = Statements(index.services.engine)
    u = Uploader(index, index.token())
    wheel = make_wheel(tmp_path, "durable", "1.0")
    session = u.open("durable", "1.0")
    u.upload(session, wheel, HTTP)
    steps = statements.levels_of("INSERT INTO UPLOAD_SESSIONS") | statements.levels_of(
        "INSERT INTO FILE_UPLOAD_SESSIONS"
    )
    assert steps == {"NORMAL"}, "opening a session or a file need not flush the WAL"
    statements.clear()
    u.publish(session)
    assert statements.levels_of("INSERT INTO FILES") == {"FULL"}
    assert statements.levels_of("INSERT INTO JOURNAL") == {"FULL"}


def test_a_legacy_upload_commits_durably(index, tmp_path) -> None:  # noqa: ANN001
    statements = Statements(index.services.engine)
    wheel = make_wheel(tmp_path, "durable-legacy", "1.0")
    r = upload(index.client, wheel, index.token(), name="durable-legacy", version="1.0")
    assert r.status_code == 200, r.text
    assert statements.levels_of("INSERT INTO FILES") == {"FULL"}


def test_a_connection_goes_back_to_normal_after_a_durable_commit(index, tmp_path) -> None:  # noqa: ANN001
    """The level is per connection: a pooled connection that served a publish must not keep
    flushing every later step (nor must one that never did start flushing)."""
    statements = Statements(index.services.engine)
    u = Uploader(index, index.token())
    for n in range(3):
        session = u.open(f"again-{n}", "1.0")
        u.upload(session, make_wheel(tmp_path, f"again-{n}", "1.0"), HTTP)
        u.publish(session)
    assert statements.levels_of("INSERT INTO UPLOAD_SESSIONS") == {"NORMAL"}
    assert statements.levels_of("INSERT INTO FILES") == {"FULL"}
