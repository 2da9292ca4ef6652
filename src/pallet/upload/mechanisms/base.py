"""The mechanism interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from starlette.routing import BaseRoute

from pallet.db.models import FileUploadSession
from pallet.services import Services
from pallet.upload.v2.links import Links


class Mechanism(Protocol):
    name: str

    def describe(self, links: Links, fs: FileUploadSession) -> dict[str, Any]:
        """The ``mechanism`` map: ``identifier`` plus whatever the client needs to send bytes."""

    def routes(self) -> list[BaseRoute]:
        """Endpoints the mechanism serves under the file-upload session URL (may be empty)."""

    def staged(self, services: Services, fs: FileUploadSession) -> Path:
        """A local file with the received bytes, for verification at ``complete``, which then
        consumes or deletes it. Raises a Problem if no (or not all) bytes arrived."""

    def has_bytes(self, fs: FileUploadSession) -> None:
        """Raise a 409 Problem unless bytes were received (cheap: no transfer)."""
