"""The project-detail model: one value rendered both as PEP 503 HTML and PEP 691 JSON, so the two
representations can never drift apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class FileEntry:
    filename: str
    url: str  # relative to the project page
    sha256: str
    size: int | None  # None only for an upstream's file whose page gave none
    upload_time: datetime | None
    requires_python: str | None = None
    yanked: str | None = None  # None = not yanked; "" = yanked without a reason
    core_metadata_sha256: str | None = None
    provenance_url: str | None = None


@dataclass(frozen=True)
class ProjectPage:
    name: str
    normalized_name: str
    serial: int
    files: list[FileEntry] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    # PEP 752: the namespaces of this index that cover the project ({"name", "owned"}), or
    # None when none does.
    namespaces: list[dict[str, object]] | None = None


@dataclass(frozen=True)
class ProjectList:
    serial: int
    projects: list[tuple[str, str]]  # (display name, normalized name)
