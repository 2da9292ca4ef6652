"""``vnd-pallet-s3multipart-presigned``: large files as parts PUT in parallel, resumable.

The server opens the multipart upload when the file-upload session is created and chooses the
part size (at least 5 MiB, at most 10,000 parts). The ``mechanism`` map lists every part with a
pre-signed URL that binds its exact length, plus ``parts_url``: ``GET`` it to see which parts
are already stored (to resume after a crash, re-PUT only the missing ones), ``POST`` it a JSON
array ``[{"part-number": n, "etag": "..."}]`` to report ETags, which ``complete`` then checks
against the store's own list. ``complete`` assembles the parts (S3 CompleteMultipartUpload, or
concatenation on the local backend) and verifies size and every declared hash like any file.
"""

from __future__ import annotations

import math
import secrets
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pallet.connections import read_bounded
from pallet.core.problems import Problem, ProblemError
from pallet.core.untrusted import JsonLimits, load_json
from pallet.core.upload2 import rfc3339
from pallet.db.models import FileUploadSession
from pallet.services import Services
from pallet.storage.signed import presign_put
from pallet.upload.links import Links
from pallet.upload.mechanisms.base import FileContext, FileRoute, NotReceived
from pallet.upload.mechanisms.digests import CHUNK, digest_chunks, stream_digests
from pallet.upload.mechanisms.staged import Staged

NAME = "vnd-pallet-s3multipart-presigned"
MIN_PART = 5 * 2**20
TARGET_PART = 16 * 2**20
MAX_PARTS = 10_000
#: ``POST parts_url``: 10,000 reported parts fit easily; ETags are short quoted hex strings.
MAX_PART_LIST = 4 * 2**20
PART_LIST = JsonLimits(depth=4, string=1024)


def part_size_for(size: int) -> int:
    return max(MIN_PART, TARGET_PART, math.ceil(size / MAX_PARTS))


def part_sizes(size: int, part_size: int) -> list[int]:
    count = max(1, math.ceil(size / part_size))
    return [min(part_size, size - i * part_size) for i in range(count)]


def _local_part_key(fs: FileUploadSession, number: int) -> str:
    return f"{fs.staged_key}.parts/{number:05d}"


def _algorithms(fs: FileUploadSession) -> tuple[str, ...]:
    """sha256 and what the client declared: the read-back is the slow step of this mechanism,
    and on two busy cores every extra digest slows it (a file sent straight to the store
    records no blake2b-256 of its own, as with the pre-signed PUT)."""
    return ("sha256", *sorted(set(fs.hashes) - {"sha256"}))


class S3MultipartPresigned:
    name = NAME

    def prepares_in_store(self, services: Services) -> bool:
        return hasattr(services.store, "create_multipart")  # S3's CreateMultipartUpload

    def prepare(self, services: Services, fs: FileUploadSession) -> None:
        fs.staged_key = f"staging/{fs.session_id}/{fs.id}"
        create = getattr(services.store, "create_multipart", None)
        upload_id = create(fs.staged_key) if create else secrets.token_hex(8)
        fs.mechanism_state = {"upload-id": upload_id, "part-size": part_size_for(fs.size)}

    def describe(self, services: Services, links: Links, fs: FileUploadSession) -> dict[str, Any]:
        state = fs.mechanism_state or {}
        base = {
            "identifier": NAME,
            "upload-id": state.get("upload-id"),
            "part-size": state.get("part-size"),
            "parts_url": links.file_action(fs.session_id, fs.id, "parts"),
        }
        if fs.status != "pending":
            return base
        now = math.ceil(time.time())
        expires_at = min(now + services.settings.presign_ttl, int(fs.expires_at.timestamp()))
        ttl = max(expires_at - now, 1)
        presign_part = getattr(services.store, "presign_part", None)
        parts = []
        for number, size in enumerate(part_sizes(fs.size, state["part-size"]), start=1):
            if presign_part is not None:
                url = presign_part(fs.staged_key, state["upload-id"], number, size, ttl)
            else:
                url = presign_put(
                    services.store,
                    services.settings.secret_key,
                    links.base,
                    _local_part_key(fs, number),
                    {"content-length": str(size)},
                    ttl,
                )
            parts.append({"part-number": number, "size": size, "url": url})
        return {
            **base,
            "parts": parts,
            "expires-at": rfc3339(datetime.fromtimestamp(expires_at, UTC)),
        }

    def routes(self) -> list[FileRoute]:
        return [FileRoute("parts", "GET", list_parts), FileRoute("parts", "POST", report_etags)]

    def stored_parts(self, services: Services, fs: FileUploadSession) -> list[tuple[int, str, int]]:
        state = fs.mechanism_state or {}
        lister = getattr(services.store, "list_parts", None)
        if lister is not None:
            parts = lister(fs.staged_key, state["upload-id"])
            if parts is not None:
                return parts
            # The upload is gone. A ``complete`` that assembled it and died before recording
            # that (a killed replica) left the whole object: every part is there, as reported.
            if fs.staged_key is None or services.store.size(fs.staged_key) != fs.size:
                return []
            reported = state.get("etags") or {}
            sizes = part_sizes(fs.size, state["part-size"])
            return [(n, reported.get(str(n), ""), size) for n, size in enumerate(sizes, 1)]
        out = []
        for number, _size in enumerate(part_sizes(fs.size, state["part-size"]), start=1):
            stored = services.store.size(_local_part_key(fs, number))
            if stored is not None:
                out.append((number, f'"{number}-{stored}"', stored))
        return out

    def has_bytes(self, services: Services, fs: FileUploadSession) -> None:
        self._all_stored(fs, self.stored_parts(services, fs))

    @staticmethod
    def _all_stored(fs: FileUploadSession, parts: list[tuple[int, str, int]]) -> None:
        expected = part_sizes(fs.size, (fs.mechanism_state or {})["part-size"])
        have = {n: size for n, _etag, size in parts}
        missing = [n for n, size in enumerate(expected, start=1) if have.get(n) != size]
        if missing:
            raise NotReceived(
                409,
                "parts-missing",
                "Upload incomplete",
                f"{len(missing)} part(s) not stored yet; PUT them (see parts_url) and retry.",
                errors=[ProblemError(f"parts/{n}", "missing") for n in missing[:50]],
            )

    def staged(self, services: Services, fs: FileUploadSession) -> Staged:
        state = fs.mechanism_state or {}
        parts = self.stored_parts(services, fs)
        self._all_stored(fs, parts)
        reported = {int(k): v for k, v in (state.get("etags") or {}).items()}
        wrong = [n for n, etag, _ in parts if n in reported and reported[n] != etag]
        if wrong:
            raise Problem(
                400,
                "etag-mismatch",
                "Part ETag mismatch",
                "The reported ETags differ from the stored parts.",
                errors=[ProblemError(f"parts/{n}", "etag differs") for n in wrong],
            )
        assert fs.staged_key is not None  # set by prepare; cleared only when the file completes
        complete = getattr(services.store, "complete_multipart", None)
        if complete is not None:
            if services.store.size(fs.staged_key) != fs.size:  # else assembled already
                complete(fs.staged_key, state["upload-id"], [(n, e) for n, e, _ in parts])
            return Staged(
                stream_digests(services, fs.staged_key, _algorithms(fs)), key=fs.staged_key
            )
        # Local backend: concatenate the parts into one staged file, hashing on the way.
        root = services.store.local_path(fs.staged_key)
        assert root is not None
        root.parent.mkdir(parents=True, exist_ok=True)

        def concatenated(out: BinaryIO) -> Iterator[bytes]:
            for number, _etag, _size in sorted(parts):
                with services.store.open(_local_part_key(fs, number)) as part:
                    while chunk := part.read(CHUNK):
                        out.write(chunk)
                        yield chunk

        with root.open("wb") as out:
            digests = digest_chunks(concatenated(out), _algorithms(fs))
        shutil.rmtree(root.with_name(root.name + ".parts"), ignore_errors=True)
        return Staged(digests, path=root)


async def list_parts(request: Request, services: Services, ctx: FileContext) -> Response:
    assert ctx.file is not None  # a mechanism's endpoints are only called with their file loaded
    parts = await run_in_threadpool(S3MultipartPresigned().stored_parts, services, ctx.file)
    return JSONResponse([{"part-number": n, "etag": e, "size": s} for n, e, s in parts])


async def report_etags(request: Request, services: Services, ctx: FileContext) -> Response:
    raw = await read_bounded(request, MAX_PART_LIST, "Part lists")
    try:
        body = load_json(raw, PART_LIST)  # bounded: a 400 json-limit-exceeded problem
        etags = {str(int(p["part-number"])): str(p["etag"]) for p in body}
    except (ValueError, TypeError, KeyError):
        raise Problem(
            400,
            "invalid-request",
            "Invalid part list",
            'Send [{"part-number": 1, "etag": "..."}, ...].',
        ) from None

    def record(fs: FileUploadSession) -> None:
        state = dict(fs.mechanism_state or {})
        state["etags"] = {**state.get("etags", {}), **etags}
        fs.mechanism_state = state

    await run_in_threadpool(ctx.update_file, record)
    return Response(status_code=204)
