"""Timestamps as Pallet stores them: UTC, to the second. SQLite hands back naive datetimes, so
every comparison goes through ``aware``."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
