"""Name claims in the database (``name_claims``): what ``pallet.core.routing`` is told covers a
name, and the writes of ``pallet claim`` and of a first private upload."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, bindparam, delete, func, or_, select
from sqlalchemy.orm import Session

from pallet.core.routing import Claim
from pallet.db.models import NameClaim

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
