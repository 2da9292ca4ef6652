"""Leases: which process does a unit of background work, when every replica offers to.

A lease is a row (name, holder, expires_at). Taking one is a single conditional upsert that
succeeds only when nobody holds the name or the holder's time has run out, so on PostgreSQL and
SQLite alike one process holds it at a time. The holder renews it while it works (one heartbeat
thread per process), so work a killed replica left behind is taken over once its lease lapses,
and never while its holder is still at it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, literal_column, or_, select, update
from sqlalchemy.orm import Session

from pallet.db.clock import now
from pallet.db.models import Lease
from pallet.db.session import read_session, retrying

log = logging.getLogger("pallet.leases")

#: Seconds a lease outlives its holder's last renewal: how long a killed replica's work waits.
TTL = 30
#: The leased kinds of work: one sweep at a time, and each deferred (202) item.
SWEEP = "gc-sweep"


def publish(sid: str) -> str:
    """The lease of a deferred publish of session ``sid``."""
    return f"publish:{sid}"


def verification(fid: str) -> str:
    """The lease of a deferred verification of file session ``fid``."""
    return f"complete:{fid}"


#: This process, as lease holders are named (pids repeat across machines and restarts).
HOLDER = f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(4)}"


def _upsert(s: Session, name: str, ttl: int, *, renew: bool) -> bool:
    """Insert the lease, or take it over once lapsed; ``renew`` also extends one we hold.

    On PostgreSQL "now" is the database's clock, the one clock every replica shares, so the
    replicas' own clocks may drift apart without two of them holding a lease at once."""
    postgres = s.get_bind().dialect.name == "postgresql"
    current: Any = func.now() if postgres else now()
    until = current + timedelta(seconds=ttl)
    # The dialect's own module, imported here: the PostgreSQL one is 2 MB a process, for nothing
    # on SQLite (and a PostgreSQL engine has loaded it already).
    insert: Any
    if postgres:
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    upsert: Any = (
        insert(Lease)
        .values(name=name, holder=HOLDER, expires_at=until)
        .on_conflict_do_update(
            index_elements=[Lease.name],
            set_={"holder": HOLDER, "expires_at": until},
            where=or_(Lease.expires_at <= current, Lease.holder == HOLDER)
            if renew
            else Lease.expires_at <= current,
        )
        .returning(literal_column("1"))
    )
    return s.execute(upsert).first() is not None


def take_in(s: Session, name: str, ttl: int = TTL) -> bool:
    """Take ``name`` inside the caller's transaction: with the write that creates the work, so
    no other process can see the work unowned."""
    return _upsert(s, name, ttl, renew=False)


def take(engine: Engine, name: str, ttl: int = TTL, *, renew: bool = False) -> bool:
    """Whether this process now holds ``name``. Without ``renew``, a lease this very process
    holds is not taken again: work it is doing is not started twice."""
    return retrying(engine, lambda s: _upsert(s, name, ttl, renew=renew))


def held(engine: Engine, name: str) -> bool:
    """Whether some process holds ``name`` now (its lease has not run out)."""
    with read_session(engine) as s:
        postgres = s.get_bind().dialect.name == "postgresql"
        current: Any = func.now() if postgres else now()
        found = s.execute(
            select(Lease.name).where(Lease.name == name, Lease.expires_at > current)
        ).first()
    return found is not None


def release(engine: Engine, name: str) -> None:
    retrying(
        engine,
        lambda s: s.execute(delete(Lease).where(Lease.name == name, Lease.holder == HOLDER)),
    )


def expire(s: Session, name: str) -> None:
    """Test hook: end a lease now, as if its holder had died ``TTL`` seconds ago."""
    s.execute(update(Lease).where(Lease.name == name).values(expires_at=now() - timedelta(1)))


class Heartbeat:
    """Renews every lease this process holds, every third of ``TTL``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def holding(self, name: str) -> Iterator[None]:
        """Keep ``name`` (already taken) renewed until the block ends, then release it."""
        with self._lock:
            self._held.add(name)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pallet-leases", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held.discard(name)
            try:
                release(self.engine, name)
            except Exception:  # noqa: BLE001 - it lapses by itself
                log.warning("could not release lease %s; it lapses in %d s", name, TTL)

    def _run(self) -> None:
        while not self._wake.wait(TTL / 3):
            with self._lock:
                names = sorted(self._held)
            for name in names:
                try:
                    if not take(self.engine, name, renew=True):
                        log.error("lease %s was taken over while held", name)
                except Exception:  # noqa: BLE001 - the next beat retries
                    log.warning("could not renew lease %s", name)

    def stop(self) -> None:
        self._wake.set()
