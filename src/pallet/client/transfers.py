"""Client side of each upload mechanism: how one file's bytes leave this machine.

Every transfer streams from disk in 1 MiB reads (memory stays flat at any file size), reports
progress as bytes go out, and can be re-sent from the start of its range on a retry.
Pre-signed URLs are sent without the index credentials: the signature is the credential.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pallet.client.dists import CHUNK, Dist
from pallet.client.sessions import FileUpload, parse_time
from pallet.client.transport import ClientError, Transport

HTTP_POST_BYTES = "http-post-bytes"
PRESIGNED_PUT = "vnd-pallet-presigned-put"
MULTIPART = "vnd-pallet-s3multipart-presigned"
#: What this client can drive, in its own order of preference for an ordinary file.
SUPPORTED = (PRESIGNED_PUT, MULTIPART, HTTP_POST_BYTES)
URL_MARGIN = 60.0  # refresh pre-signed URLs that expire sooner than this


class Canceled(Exception):
    """Raised inside a transfer when the user interrupted the run."""


class RateLimit:
    """``--limit-rate``: an average ceiling on bytes sent per second, shared by every transfer
    of a run (so a CI job leaves bandwidth to its neighbours)."""

    def __init__(self, bytes_per_second: float) -> None:
        self.rate = bytes_per_second
        self.started: float | None = None  # the first byte, not the run's start (hashing)
        self.sent = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        with self._lock:
            now = time.monotonic()
            if self.started is None:
                self.started = now
            self.sent += n
            ahead = self.sent / self.rate - (now - self.started)
        if ahead > 0:
            time.sleep(ahead)


@dataclass
class Meter:
    """Bytes for the progress bar (rewound when an attempt is retried) and bytes really sent."""

    progress: Callable[[int], None]
    cancel: threading.Event = field(default_factory=threading.Event)
    limit: RateLimit | None = None
    wire_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, n: int, *, wire: bool = True) -> None:
        if wire:
            with self._lock:
                self.wire_bytes += n
            if self.limit is not None and n > 0:
                self.limit.take(n)
        self.progress(n)


class FileRange:
    """A body factory for ``Transport.request``: each call is a fresh pass over the range."""

    def __init__(self, path: Path, offset: int, length: int, meter: Meter) -> None:
        self.path, self.offset, self.length, self.meter = path, offset, length, meter
        self._counted = 0

    def __call__(self) -> Iterator[bytes]:
        if self._counted:  # a retry: the bar goes back, the wire count does not
            self.meter.add(-self._counted, wire=False)
            self._counted = 0
        return self._read()

    def _read(self) -> Iterator[bytes]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            left = self.length
            while left > 0:
                if self.meter.cancel.is_set():
                    raise Canceled
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise ClientError(f"{self.path.name} shrank while being uploaded")
                left -= len(chunk)
                self._counted += len(chunk)
                self.meter.add(len(chunk))
                yield chunk


def choose(offered: list[str], dist: Dist, *, forced: str | None, multipart_threshold: int) -> str:
    """The best mechanism both sides support: multipart for large files, straight to storage
    otherwise, ``http-post-bytes`` (required of every server) as the fallback, and for files
    with attestations (only it has ``attestations_url``)."""
    if forced:
        return forced
    if dist.attestations:
        return HTTP_POST_BYTES
    usable = [m for m in offered if m in SUPPORTED]
    if MULTIPART in usable and dist.size >= multipart_threshold:
        return MULTIPART
    return next((m for m in usable if m != MULTIPART), HTTP_POST_BYTES)


def hash_names(mechanism: str) -> tuple[str, ...]:
    """What to declare: sha256 always; blake2b too for bytes sent through the index, which
    hashes the stream anyway. Not for a pre-signed PUT, where the store verifies the sha256 and
    any other digest would make the index read the object back, nor for multipart, whose
    read-back (S3 keeps no whole-object sha256) is the slow step: each extra digest is a pass
    on both sides that proves nothing the sha256 does not."""
    return ("sha256",) if mechanism in (PRESIGNED_PUT, MULTIPART) else ("sha256", "blake2b")


def declared_hashes(mechanism: str, dist: Dist) -> dict[str, str]:
    return {name: dist.hashes[name] for name in hash_names(mechanism)}


def _post_json(transport: Transport, url: str, payload: object) -> None:
    """Mechanism side channels (attestations, part ETags): plain JSON, replaceable, so retried."""
    transport.request(
        "POST",
        url,
        idempotent=True,
        body=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )


def _fresh(fs: FileUpload, lock: threading.Lock) -> dict[str, Any]:
    """The mechanism map, re-fetched (new signatures) if its URLs are about to expire."""
    with lock:
        expires = parse_time(fs.mechanism.get("expires-at"))
        if expires is not None and expires - time.time() < URL_MARGIN:
            fs.refresh()
        return fs.mechanism


def send(
    transport: Transport,
    fs: FileUpload,
    dist: Dist,
    meter: Meter,
    *,
    part_jobs: int = 4,
    resume: bool = False,
) -> None:
    mechanism = fs.mechanism.get("identifier")
    if dist.attestations and not fs.mechanism.get("attestations_url"):
        raise ClientError(
            f"{dist.filename} has attestations, but {mechanism} cannot carry them "
            f"(use --mechanism {HTTP_POST_BYTES}, or move the .attestation files away)"
        )
    lock = threading.Lock()
    if mechanism == HTTP_POST_BYTES:
        _post_bytes(transport, fs, dist, meter)
    elif mechanism == PRESIGNED_PUT:
        _presigned_put(transport, fs, dist, meter, lock)
    elif mechanism == MULTIPART:
        _multipart(transport, fs, dist, meter, lock, part_jobs, resume)
    else:
        raise ClientError(
            f"the server chose mechanism {mechanism!r}, which this client cannot drive"
        )


def _post_bytes(transport: Transport, fs: FileUpload, dist: Dist, meter: Meter) -> None:
    m = fs.mechanism
    transport.request(
        "POST",
        m["file_url"],
        idempotent=True,  # PEP 694 servers (Pallet) replace the bytes of a pending file
        body=FileRange(dist.path, 0, dist.size, meter),
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(dist.size)},
    )
    if dist.attestations:
        _post_json(
            transport, m["attestations_url"], [json.loads(p.read_text()) for p in dist.attestations]
        )


def _presigned_put(
    transport: Transport, fs: FileUpload, dist: Dist, meter: Meter, lock: threading.Lock
) -> None:
    m = _fresh(fs, lock)
    headers = {str(k): str(v) for k, v in (m.get("headers") or {}).items()}
    headers.setdefault("Content-Length", str(dist.size))
    transport.request(
        m.get("method", "PUT"),
        m["url"],
        idempotent=True,
        body=FileRange(dist.path, 0, dist.size, meter),
        headers=headers,
        authenticate=False,
        # 412: If-None-Match found the object already stored (an earlier attempt whose answer
        # was lost); ``complete`` verifies what is there.
        ok=lambda r: r.is_success or r.status_code == 412,
    )


def _stored_parts(transport: Transport, parts_url: str) -> dict[int, tuple[str, int]]:
    response = transport.request(
        "GET", parts_url, idempotent=True, headers={"Accept": "application/json"}
    )
    try:
        return {
            int(p["part-number"]): (str(p.get("etag", "")), int(p["size"])) for p in response.json()
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ClientError(f"parts_url answered no part list: {response.text[:200]}") from None


def _multipart(
    transport: Transport,
    fs: FileUpload,
    dist: Dist,
    meter: Meter,
    lock: threading.Lock,
    part_jobs: int,
    resume: bool,
) -> None:
    m = _fresh(fs, lock)
    part_size = int(m["part-size"])
    stored = _stored_parts(transport, m["parts_url"]) if resume else {}
    etags: dict[int, str] = {}
    todo = []
    for part in m["parts"]:
        number, size = int(part["part-number"]), int(part["size"])
        if number in stored and stored[number][1] == size:
            etags[number] = stored[number][0]
            meter.add(size, wire=False)  # already there: counts toward progress, not the wire
        else:
            todo.append((number, size))

    def put(number: int, size: int) -> None:
        url = next(p["url"] for p in _fresh(fs, lock)["parts"] if int(p["part-number"]) == number)
        response = transport.request(
            "PUT",
            url,
            idempotent=True,
            body=FileRange(dist.path, (number - 1) * part_size, size, meter),
            headers={"Content-Length": str(size)},
            authenticate=False,
        )
        etags[number] = response.headers.get("etag", "")

    with ThreadPoolExecutor(
        max_workers=max(1, part_jobs), thread_name_prefix="pallet-part"
    ) as pool:
        futures = [pool.submit(put, number, size) for number, size in todo]
        try:
            for future in futures:
                future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # parts not started yet never start
            raise
    report = [{"part-number": n, "etag": e} for n, e in sorted(etags.items()) if e]
    if report:
        _post_json(transport, m["parts_url"], report)
