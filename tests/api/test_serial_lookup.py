"""The read path's serial check: batched on PostgreSQL, never stale, never on the event loop."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from pallet.db import journal
from pallet.db.engine import make_engine
from pallet.db.migrate import upgrade
from pallet.db.models import Project
from pallet.db.session import write_session
from pallet.index.lookup import SerialLookup


def _add_project(engine, name: str) -> int:  # noqa: ANN001
    with write_session(engine) as s:
        project = Project(name=name, normalized_name=name, created=datetime.now(UTC))
        s.add(project)
        s.flush()
        return journal.record(s, project, "create project")


def _bump(engine, name: str) -> int:  # noqa: ANN001
    from sqlalchemy import select

    with write_session(engine) as s:
        project = s.execute(select(Project).where(Project.normalized_name == name)).scalar_one()
        return journal.record(s, project, "change")


def test_answers_match_the_database(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    serials = {f"p{i}": _add_project(engine, f"p{i}") for i in range(20)}
    lookup = SerialLookup(engine)

    async def main() -> None:
        rows = await asyncio.gather(*(lookup.project_async(n) for n in [*serials, "missing"]))
        assert [r[2] if r else None for r in rows] == [*serials.values(), None]
        assert [r[1] if r else None for r in rows[:-1]] == list(serials)
        assert await lookup.index_serial_async() == max(serials.values())

    try:
        asyncio.run(main())
    finally:
        lookup.close()
        engine.dispose()


def test_postgresql_batches_concurrent_requests(database_url: str) -> None:
    """Fifty requests arriving together cost a few round trips, not fifty, and none of them runs
    the query on the event loop's thread."""
    engine = make_engine(database_url)
    upgrade(engine)
    for i in range(50):
        _add_project(engine, f"p{i}")
    lookup = SerialLookup(engine)
    threads: list[str] = []
    original = lookup._run

    def counting_run(conn, names, serial):  # noqa: ANN001, ANN202
        threads.append(threading.current_thread().name)
        return original(conn, names, serial)

    lookup._run = counting_run  # type: ignore[method-assign]

    async def main() -> list:
        return await asyncio.gather(*(lookup.project_async(f"p{i}") for i in range(50)))

    try:
        rows = asyncio.run(main())
    finally:
        lookup.close()
        engine.dispose()
    assert all(row is not None for row in rows)
    if engine.dialect.name == "postgresql":
        assert lookup.batched
        assert 1 <= len(threads) <= 2, threads
        assert all(name.startswith("pallet-serials") for name in threads)
    else:  # SQLite answers inline: a local file, cheaper than a thread hop
        assert not lookup.batched
        assert threads == []


def test_a_request_never_joins_a_query_sent_before_it_arrived(database_url: str) -> None:
    """A change committed while a batch is in flight is seen by every request that arrived
    after the commit, even though the in-flight batch (sent before it) cannot see it."""
    engine = make_engine(database_url)
    upgrade(engine)
    _add_project(engine, "p")
    lookup = SerialLookup(engine)
    if not lookup.batched:
        lookup.close()
        engine.dispose()
        return
    in_query = threading.Event()
    proceed = threading.Event()
    original = lookup._run
    calls = 0

    def slow_first_run(conn, names, serial):  # noqa: ANN001, ANN202
        nonlocal calls
        calls += 1
        result = original(conn, names, serial)
        if calls == 1:  # the first batch has read the old serial; hold it there
            in_query.set()
            assert proceed.wait(10)
        return result

    lookup._run = slow_first_run  # type: ignore[method-assign]

    async def main() -> tuple:
        first = asyncio.ensure_future(lookup.project_async("p"))
        await asyncio.get_running_loop().run_in_executor(None, in_query.wait, 10)
        bumped = await asyncio.get_running_loop().run_in_executor(None, _bump, engine, "p")
        second = asyncio.ensure_future(lookup.project_async("p"))
        await asyncio.sleep(0)
        proceed.set()
        return (await first)[2], (await second)[2], bumped

    try:
        old, new, bumped = asyncio.run(main())
    finally:
        proceed.set()
        lookup.close()
        engine.dispose()
    assert old < bumped
    assert new == bumped
