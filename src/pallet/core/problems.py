"""RFC 9457 problem documents: the one error shape every endpoint answers with.

Each failure kind has a stable slug; its ``type`` URI is ``urn:pallet:problem:<slug>`` so clients can
switch on it without parsing prose. ``errors`` carries per-field messages (``source`` + ``message``),
the extension member PEP 694 recommends; ``meta`` is added by the Upload 2.0 endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:pallet:problem:"


@dataclass
class ProblemError:
    source: str
    message: str


@dataclass
class Problem(Exception):
    """An expected failure, raised anywhere and rendered once by the web layer."""

    status: int
    slug: str
    title: str
    detail: str = ""
    errors: list[ProblemError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.title}: {self.detail}")

    @property
    def type(self) -> str:
        return TYPE_PREFIX + self.slug

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "status": self.status,
            "title": self.title,
        }
        if self.detail:
            body["detail"] = self.detail
        if self.errors:
            body["errors"] = [{"source": e.source, "message": e.message} for e in self.errors]
        body.update(self.extra)
        return body


def bad_request(slug: str, title: str, detail: str = "", **kw: Any) -> Problem:
    return Problem(400, slug, title, detail, **kw)
