"""Where a project comes from: this index, one upstream, or nowhere. Decided on the normalised
name alone, before anything is asked of any upstream, so a private name never leaks through a
lookup and a private project is never merged with an upstream one (dependency confusion).

The rules, first match wins:

1. a project that exists here is served from here, whole;
2. a claimed name or namespace (``pallet claim``; every private upload claims its name) is
   served from here or not at all;
3. a name on the deny list, or not on a non-empty allow list, goes nowhere;
4. with no upstream (``upstream: none``), nothing goes upstream;
5. otherwise the upstreams are asked in their order, and the first that knows the project
   serves all of it (``Route.upstreams``).

Pure: the caller looks up whether the project exists and which claims cover it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.utils import canonicalize_name

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,198}[A-Za-z0-9])?$")  # PEP 508


class Source(enum.Enum):
    HERE = "here"
    UPSTREAM = "upstream"
    NOWHERE = "nowhere"


@dataclass(frozen=True)
class Claim:
    """A name (``acme-utils``) or a namespace (``acme-*``) reserved for this index.

    A namespace follows PEP 752 (accepted): namespace ``acme`` covers the project ``acme`` and
    every project whose normalised name starts with ``acme-``, and not ``acmecorp``. So
    ``acme-*`` (or ``acme_*``, ``acme.*``) is stored as ``acme`` with ``prefix`` set; a bare
    ``acme*`` is refused, as it would claim other people's names."""

    pattern: str  # a normalised name; for a namespace, without the trailing "-"
    prefix: bool

    @classmethod
    def parse(cls, text: str) -> Claim:
        """``NAME`` or ``NAMESPACE-*``; ValueError for anything else."""
        raw = text.strip()
        prefix = raw.endswith("*")
        body = raw[:-1] if prefix else raw
        if prefix:
            if not body or body[-1] not in "-_.":
                raise ValueError(
                    f"a namespace ends in '-*' (PEP 752: acme-* covers acme and acme-..., "
                    f"not acmecorp): {text!r}"
                )
            body = body[:-1]
        if not _NAME.match(body):
            raise ValueError(f"not a project name (PEP 508): {text!r}")
        return cls(canonicalize_name(body), prefix)

    def covers(self, normalized: str) -> bool:
        if normalized == self.pattern:
            return True
        return self.prefix and normalized.startswith(self.pattern + "-")

    def __str__(self) -> str:
        return f"{self.pattern}-*" if self.prefix else self.pattern


@dataclass(frozen=True)
class Policy:
    """What the operator configured: upstream names in order (empty: ``upstream: none``),
    and per-project lists (names or ``NAMESPACE-*``, as claims are written)."""

    upstreams: tuple[str, ...] = ()
    allow: tuple[Claim, ...] = ()
    deny: tuple[Claim, ...] = ()


@dataclass(frozen=True)
class Route:
    source: Source
    reason: str
    upstreams: tuple[str, ...] = ()

    @property
    def goes_upstream(self) -> bool:
        return self.source is Source.UPSTREAM


def route(normalized: str, *, exists_here: bool, claims: Iterable[Claim], policy: Policy) -> Route:
    if exists_here:
        return Route(Source.HERE, "a project of this index")
    claimed = next((c for c in claims if c.covers(normalized)), None)
    if claimed is not None:
        return Route(Source.NOWHERE, f"claimed by this index ({claimed})")
    denied = next((c for c in policy.deny if c.covers(normalized)), None)
    if denied is not None:
        return Route(Source.NOWHERE, f"on the deny list ({denied})")
    if policy.allow and not any(c.covers(normalized) for c in policy.allow):
        return Route(Source.NOWHERE, "not on the allow list")
    if not policy.upstreams:
        return Route(Source.NOWHERE, "no upstream")
    return Route(Source.UPSTREAM, "unclaimed", policy.upstreams)
