"""Leases: one holder at a time on either database, taken over only once lapsed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from pallet.db import leases
from pallet.db.engine import make_engine
from pallet.db.migrate import upgrade
from pallet.db.models import Lease
from pallet.db.session import retrying, write_session


def test_one_holder_and_take_over_after_lapse(database_url: str, monkeypatch) -> None:  # noqa: ANN001
    engine = make_engine(database_url)
    upgrade(engine)
    try:
        assert leases.take(engine, "job")
        assert not leases.take(engine, "job")  # held, even by this very process
        assert leases.take(engine, "job", renew=True)  # ... which may renew it
        monkeypatch.setattr(leases, "HOLDER", "another-replica")
        assert not leases.take(engine, "job", renew=True)  # others may not
        retrying(engine, lambda s: leases.expire(s, "job"))
        assert leases.take(engine, "job")  # lapsed: taken over
        with write_session(engine) as s:
            assert s.execute(select(Lease.holder)).scalar_one() == "another-replica"
        leases.release(engine, "job")
        with write_session(engine) as s:
            assert s.execute(select(Lease)).first() is None
    finally:
        engine.dispose()


def test_many_takers_at_once_one_wins(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(8)]
    upgrade(engines[0])
    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            won = list(pool.map(lambda e: leases.take(e, "contended"), engines))
        assert won.count(True) == 1
    finally:
        for e in engines:
            e.dispose()
