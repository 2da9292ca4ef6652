"""The proxy's audit log (``proxy_audit``): appended to, in the transaction that acts on what
was fetched where there is one, and read by ``pallet proxy-audit``. Never updated."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from pallet.db.models import ProxyAudit


def record(s: Session, *, project: str, upstream: str, kind: str, url: str, decision: str,
           outcome: str, sha256: str | None = None) -> None:  # fmt: skip
    s.add(
        ProxyAudit(
            at=datetime.now(UTC),
            project=project,
            upstream=upstream,
            kind=kind,
            url=url[:2000],
            sha256=sha256,
            decision=decision[:200],
            outcome=outcome[:2000],
        )  # fmt: skip
    )


def recent(s: Session, *, project: str | None = None, limit: int = 100,
           before: int | None = None, within: Collection[str] | None = None) -> list[ProxyAudit]:  # fmt: skip
    """Newest first; ``before``: only entries older than that id (the next page); ``within``:
    only entries of these projects (what a limited token may read)."""
    stmt = select(ProxyAudit).order_by(ProxyAudit.id.desc()).limit(limit)
    if project is not None:
        stmt = stmt.where(ProxyAudit.project == project)
    if within is not None:
        stmt = stmt.where(ProxyAudit.project.in_(sorted(within)))
    if before is not None:
        stmt = stmt.where(ProxyAudit.id < before)
    return list(s.execute(stmt).scalars())
