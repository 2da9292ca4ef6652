"""``http-post-bytes``, the mechanism PEP 694 requires: one authenticated POST of the raw file to
``file_url``, optional PEP 740 attestations to ``attestations_url`` before ``complete``.

Pallet's choices where the PEP is silent: the bytes POST answers 204; a Content-Length that
differs from the declared size is refused before reading (400), and the size is enforced while
streaming for chunked bodies; a retry while ``pending`` replaces earlier bytes; hashes are checked
at ``complete``.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from pallet.core.problems import Problem
from pallet.db.models import FileUploadSession
from pallet.services import Services
from pallet.upload.links import Links
from pallet.upload.mechanisms.base import FileContext, FileRoute, NotReceived
from pallet.upload.mechanisms.staged import Staged
from pallet.upload.spool import Digests, HashingSpool

NAME = "http-post-bytes"


def size_mismatch(declared: int, got: str) -> Problem:
    return Problem(
        400,
        "size-mismatch",
        "Size mismatch",
        f"The file upload session declared {declared} bytes but {got} were sent.",
    )


def staging_key(fs: FileUploadSession) -> str:
    return f"staging/{fs.session_id}/{fs.id}"


class HttpPostBytes:
    name = NAME

    def prepares_in_store(self, services: Services) -> bool:
        return False

    def prepare(self, services: Services, fs: FileUploadSession) -> None:
        """Nothing to check: bytes are staged when they arrive."""

    def describe(self, services: Services, links: Links, fs: FileUploadSession) -> dict[str, Any]:
        return {
            "identifier": NAME,
            "file_url": links.file_action(fs.session_id, fs.id, "content"),
            "attestations_url": links.file_action(fs.session_id, fs.id, "attestations"),
        }

    def routes(self) -> list[FileRoute]:
        return [FileRoute("content", "POST", receive_bytes)]

    def has_bytes(self, services: Services, fs: FileUploadSession) -> None:
        if not fs.staged_key or fs.received_size is None:
            raise NotReceived(
                409,
                "no-bytes",
                "No file received",
                "POST the file to the mechanism's file_url before completing the upload.",
            )

    def staged(self, services: Services, fs: FileUploadSession) -> Staged:
        """The received bytes as a local file, which ``complete`` consumes (moves into the
        store) or deletes; for the local store it is the staged blob itself."""
        self.has_bytes(services, fs)
        assert fs.staged_key is not None and fs.received_size is not None
        digests = Digests(fs.received_size, (fs.mechanism_state or {}).get("digests", {}))
        # The bytes came through Pallet anyway: on a remote store they are checked in place.
        path = services.store.local_path(fs.staged_key)
        return Staged(digests, path=path) if path else Staged(digests, key=fs.staged_key)


async def receive_bytes(request: Request, services: Services, ctx: FileContext) -> Response:
    """Stream the body to a spool, hashing every declared algorithm, then stage it."""
    fs = ctx.file
    assert fs is not None  # a mechanism's endpoints are only called with their file loaded
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/octet-stream":
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "http-post-bytes takes the raw file as application/octet-stream.",
        )
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) != fs.size):
        raise size_mismatch(fs.size, declared)
    algorithms = ("sha256", "blake2_256", *sorted(set(fs.hashes) - {"sha256"}))
    spool = HashingSpool(services.settings.tmp_dir, fs.filename, fs.size, algorithms)
    try:
        async for chunk in request.stream():
            try:
                await spool.write(chunk)
            except Problem as exc:
                if exc.slug == "file-too-large":
                    raise size_mismatch(fs.size, "more") from None
                raise
        spooled = await spool.finish()
    except BaseException:
        await spool.abort()
        raise
    try:
        if spooled.digests.size != fs.size:
            raise size_mismatch(fs.size, str(spooled.digests.size))
        await run_in_threadpool(ctx.store_received, spooled, fs.staged_key or staging_key(fs))
    finally:
        spooled.discard()
    return Response(status_code=204)
