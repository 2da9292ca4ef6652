"""The mechanism interface."""

from __future__ import annotations

from typing import Any, Protocol

from starlette.routing import BaseRoute

from pallet.db.models import FileUploadSession
from pallet.services import Services
from pallet.upload.mechanisms.staged import Staged
from pallet.upload.v2.links import Links


class Mechanism(Protocol):
    name: str

    def prepare(self, services: Services, fs: FileUploadSession) -> None:
        """At file-session creation: check the mechanism's preconditions (a Problem if unmet)
        and record where the bytes will be staged."""

    def describe(self, services: Services, links: Links, fs: FileUploadSession) -> dict[str, Any]:
        """The ``mechanism`` map: ``identifier`` plus whatever the client needs to send bytes.
        Rendered on every status response, so signed URLs are re-issued fresh."""

    def routes(self) -> list[BaseRoute]:
        """Endpoints the mechanism serves under the file-upload session URL (may be empty)."""

    def staged(self, services: Services, fs: FileUploadSession) -> Staged:
        """The received bytes' digests (sha256 and every declared algorithm) and where the
        bytes are, for verification at ``complete``. Raises a Problem if no bytes arrived."""

    def has_bytes(self, services: Services, fs: FileUploadSession) -> None:
        """Raise a 409 Problem unless bytes were received (cheap: no transfer)."""
