"""The mechanism interface, and the little a mechanism may know of Upload 2.0: where its URLs
go (``Links``) and, in its own endpoints, the authorised file session (``FileContext``).

Mechanisms sit below the Upload 2.0 package: it finds them in the registry, wraps their
``FileRoute`` handlers with its negotiation, authentication and session loading, and hands them
its context. Nothing here imports ``pallet.upload.v2``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from pallet.core.problems import Problem
from pallet.db.models import FileUploadSession
from pallet.services import Services
from pallet.upload.links import Links
from pallet.upload.mechanisms.staged import Staged
from pallet.upload.spool import SpooledFile


class NotReceived(Problem):
    """409: the bytes (or some parts) have not arrived. ``complete`` answers it and the file
    stays pending, so the client may send them and complete again."""


class FileContext(Protocol):
    """The file-upload session an endpoint was called for, loaded and authorised."""

    @property
    def file(self) -> FileUploadSession | None: ...

    def store_received(self, spooled: SpooledFile, key: str) -> None:
        """Stage received bytes for this (still pending) file; replaces earlier bytes."""

    def update_file(self, change: Callable[[FileUploadSession], None]) -> None:
        """Apply ``change`` in a write transaction, while the file still takes bytes."""


FileHandler = Callable[[Request, Services, FileContext], Awaitable[Response]]


@dataclass(frozen=True)
class FileRoute:
    """An endpoint at ``<file-upload session URL><action>``, e.g. ``content`` or ``parts``."""

    action: str
    method: str
    handler: FileHandler


class Mechanism(Protocol):
    name: str

    def prepare(self, services: Services, fs: FileUploadSession) -> None:
        """At file-session creation: check the mechanism's preconditions (a Problem if unmet)
        and record where the bytes will be staged."""

    def prepares_in_store(self, services: Services) -> bool:
        """Whether ``prepare`` calls the object store: a network round trip, so the file
        session is then created on a worker thread, never on the event loop."""

    def describe(self, services: Services, links: Links, fs: FileUploadSession) -> dict[str, Any]:
        """The ``mechanism`` map: ``identifier`` plus whatever the client needs to send bytes.
        Rendered on every status response, so signed URLs are re-issued fresh."""

    def routes(self) -> list[FileRoute]:
        """Endpoints the mechanism serves under the file-upload session URL (may be empty)."""

    def staged(self, services: Services, fs: FileUploadSession) -> Staged:
        """The received bytes' digests (sha256 and every declared algorithm) and where the
        bytes are, for verification at ``complete``. Raises ``NotReceived`` if no bytes
        arrived."""

    def has_bytes(self, services: Services, fs: FileUploadSession) -> None:
        """Raise ``NotReceived`` unless bytes were received (cheap: no transfer)."""
