"""What a publish run reports: one result per release and per file (printed, and the ``--json``
summary), and which failures a retry or ``--resume`` can still fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pallet.client.sessions import PublishingSession


@dataclass
class FileResult:
    filename: str
    size: int
    sha256: str | None = None
    mechanism: str | None = None
    status: str = "pending"  # uploaded | already-staged | exists | failed | canceled
    bytes_sent: int = 0
    seconds: float = 0.0
    error: str | None = None
    retryable: bool | None = None  # on failure: whether --resume may finish it


@dataclass
class ReleaseResult:
    name: str
    version: str
    protocol: str = "2.0"
    status: str = "pending"  # published | staged | uploaded (legacy) | failed | canceled
    session: str | None = None
    stage: str | None = None
    files: list[FileResult] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("published", "staged", "uploaded")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Interrupted(Exception):
    def __init__(self, session: PublishingSession | None) -> None:
        super().__init__("interrupted")
        self.session = session


def permanent(exc: BaseException) -> bool:
    """A refusal that a retry or --resume cannot fix (bad file, no permission, a full index:
    507 stays until an operator frees space)."""
    status = getattr(exc, "status", None)
    if status == 507:
        return True
    if status == 409:
        return getattr(exc, "slug", "") == "file-exists"
    return status is not None and 400 <= status < 500 and status not in (408, 429)
