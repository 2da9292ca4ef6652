"""Name claims in the database (``name_claims``): what ``pallet.core.routing`` is told covers a
name, and the writes of ``pallet claim`` and of a first private upload."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, bindparam, delete, func, or_, select
from sqlalchemy.orm import Session

from pallet.core.routing import Claim
from pallet.db import journal
from pallet.db.models import NameClaim, Project

# A namespace covers its own name and the names that start with it and a hyphen (PEP 752).
_COVERING = select(NameClaim.pattern, NameClaim.prefix).where(
    or_(
        NameClaim.pattern == bindparam("name"),
        and_(
            NameClaim.prefix.is_(True),
            func.substr(bindparam("name"), 1, func.length(NameClaim.pattern) + 1)
            == NameClaim.pattern + "-",
        ),
    )
)


def covering(session: Session, normalized: str) -> list[Claim]:
    """The claims that cover ``normalized``: the exact ones by index, and the namespaces."""
    rows = session.execute(_COVERING, {"name": normalized}).all()
    return [Claim(r.pattern, r.prefix) for r in rows]


def add(session: Session, claim: Claim, reason: str) -> bool:
    """Claim ``claim`` unless it is already; whether it was new. A concurrent claim of the same
    pattern makes this transaction fail on the unique key, and ``retrying`` runs it again."""
    found = session.execute(
        select(NameClaim.id).where(
            NameClaim.pattern == claim.pattern, NameClaim.prefix.is_(claim.prefix)
        )
    ).first()
    if found is not None:
        return False
    session.add(
        NameClaim(
            pattern=claim.pattern, prefix=claim.prefix, reason=reason, created=datetime.now(UTC)
        )
    )
    session.flush()
    return True


def remove(session: Session, claim: Claim) -> bool:
    gone = session.execute(
        delete(NameClaim).where(
            NameClaim.pattern == claim.pattern, NameClaim.prefix.is_(claim.prefix)
        )
    )
    return bool(gone.rowcount)  # type: ignore[attr-defined]


def listed(session: Session) -> list[tuple[Claim, str, datetime]]:
    rows = session.execute(
        select(NameClaim).order_by(NameClaim.pattern, NameClaim.prefix)
    ).scalars()
    return [(Claim(r.pattern, r.prefix), r.reason, r.created) for r in rows]


def namespaces_of(session: Session, normalized: str, created: datetime) -> list[dict] | None:
    """PEP 752's ``namespaces`` of a project here: each namespace claim covering it, ``owned``
    unless the project is older than the claim (it was grandfathered in); None for none."""
    found = session.execute(
        select(NameClaim.pattern, NameClaim.created)
        .where(NameClaim.prefix.is_(True))
        .where(
            or_(
                NameClaim.pattern == normalized,
                func.substr(normalized, 1, func.length(NameClaim.pattern) + 1)
                == NameClaim.pattern + "-",
            )
        )
        .order_by(NameClaim.pattern)
    ).all()
    if not found:
        return None
    return [{"name": r.pattern, "owned": _aware(created) >= _aware(r.created)} for r in found]


def namespaces(session: Session) -> list[str]:
    """Every namespace claimed here, normalised, sorted."""
    return list(
        session.execute(
            select(NameClaim.pattern).where(NameClaim.prefix.is_(True)).order_by(NameClaim.pattern)
        ).scalars()
    )


def touch_covered(session: Session, claim: Claim) -> int:
    """A journal entry for each project ``claim`` covers, so their cached pages (whose PEP 752
    ``namespaces`` changed) are rebuilt on every replica; how many."""
    if not claim.prefix:
        return 0
    covered = (
        session.execute(
            select(Project).where(
                or_(
                    Project.normalized_name == claim.pattern,
                    Project.normalized_name.startswith(claim.pattern + "-", autoescape=True),
                )
            )
        )
        .scalars()
        .all()
    )
    for project in covered:
        journal.record(session, project, f"namespace {claim} changed")
    return len(covered)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
