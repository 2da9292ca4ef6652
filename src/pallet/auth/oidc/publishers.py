"""Adding, listing and removing trusted publishers (``pallet trusted-publisher``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from packaging.utils import canonicalize_name
from sqlalchemy import select
from sqlalchemy.orm import Session

from pallet.auth.oidc import claims
from pallet.auth.oidc.keys import check_url
from pallet.db.models import Project, TrustedPublisher


def add(
    s: Session, project: str, kind: str, issuer: str, rules: dict[str, Any]
) -> tuple[TrustedPublisher, bool]:
    """The publisher, and whether it is new (adding one twice changes nothing)."""
    try:
        issuer = check_url(issuer.rstrip("/"))
    except ValueError as exc:
        raise claims.RuleError(f"--issuer {exc}") from None
    name = canonicalize_name(project)
    identity = claims.identity(kind, rules)
    existing = s.execute(
        select(TrustedPublisher).where(
            TrustedPublisher.project == name,
            TrustedPublisher.issuer == issuer,
            TrustedPublisher.identity == identity,
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing, False
    exists = s.execute(select(Project.id).where(Project.normalized_name == name)).first()
    row = TrustedPublisher(
        project=name,
        kind=kind,
        issuer=issuer,
        identity=identity,
        rules=rules,
        pending=exists is None,
        created=datetime.now(UTC),
    )
    s.add(row)
    s.flush()
    return row, True


def listed(s: Session, project: str | None = None) -> list[TrustedPublisher]:
    query = select(TrustedPublisher).order_by(TrustedPublisher.project, TrustedPublisher.id)
    if project:
        query = query.where(TrustedPublisher.project == canonicalize_name(project))
    return list(s.execute(query).scalars())


def remove(s: Session, publisher_id: int) -> TrustedPublisher | None:
    row = s.get(TrustedPublisher, publisher_id)
    if row is not None:
        s.delete(row)
    return row
