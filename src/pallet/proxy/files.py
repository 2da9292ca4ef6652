"""Upstream files: fetched once, streamed to the client while they are hashed and spooled, and
stored by sha256 in the content store only when the hash is the one the upstream's page
listed. Clients that ask for a file while it is downloading join that download: they read the
spool file as it grows, and the upstream is asked once.

A download whose bytes do not match (hash, or a size the page gave) is never stored, and its
clients' responses are cut short, so no installer takes it for the file (they check hashes as
well). A crash between storing the blob and recording it leaves an orphan blob, which garbage
collection finds like any other.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from pallet.db import audit
from pallet.db.models import ProxiedFile
from pallet.db.session import retrying
from pallet.proxy.upstreams import Client, Upstream, UpstreamError
from pallet.storage import blob_key

log = logging.getLogger("pallet.proxy")
CHUNK = 256 * 1024  # per read of the spool for a client: 20 clients, 5 MiB


@dataclass(frozen=True)
class Wanted:
    sha256: str
    filename: str
    url: str
    size: int | None
    upstream: Upstream
    project: str
    decision: str  # the routing decision that let it go upstream (for the audit log)


class Download:
    """One upstream download: its spool file, how much of it is written, and how it ended."""

    def __init__(self, wanted: Wanted, spool: Path) -> None:
        self.wanted, self.spool = wanted, spool
        self.written = 0
        self.done = False
        self.failed: str | None = None
        self._changed = threading.Condition()

    def progress(self, written: int) -> None:
        with self._changed:
            self.written = written
            self._changed.notify_all()

    def finish(self, failed: str | None) -> None:
        with self._changed:
            self.done, self.failed = True, failed
            self._changed.notify_all()

    def wait(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.done, timeout=timeout)

    def chunks(self, reader: BinaryIO, timeout: float) -> Iterator[bytes]:
        """The bytes as they arrive, read from ``reader`` (the spool, opened while it existed),
        all but the last one until the download is checked: a download that fails, or stalls
        for ``timeout``, raises, which cuts the response short of its length."""
        with reader as f:
            sent = 0

            def more() -> bool:
                return self.written - 1 > sent or self.done

            while True:
                with self._changed:
                    if not self._changed.wait_for(more, timeout=timeout):
                        raise UpstreamError(f"{self.wanted.filename}: the download stalled")
                    available, done, failed = self.written, self.done, self.failed
                if failed:
                    raise UpstreamError(f"{self.wanted.filename}: {failed}")
                upto = available if done else available - 1
                while sent < upto:
                    data = f.read(min(CHUNK, upto - sent))
                    if not data:
                        break
                    sent += len(data)
                    yield data
                if done and sent >= available:
                    return


class Downloads:
    """The downloads in flight in this process, by sha256."""

    def __init__(self, svc, client: Client) -> None:  # noqa: ANN001
        self.svc, self.client = svc, client
        self._running: dict[str, Download] = {}
        self._lock = threading.Lock()

    def join_or_start(self, wanted: Wanted) -> tuple[Download, BinaryIO] | None:
        """The download of ``wanted`` in flight, or a new one, with a reader of its spool; None
        when the one in flight has just stored its file (serve it from the store)."""
        with self._lock:
            running = self._running.get(wanted.sha256)
            if running is not None:
                try:
                    return running, open(running.spool, "rb")  # noqa: SIM115 - handed over
                except FileNotFoundError:
                    pass  # moved into the store a moment ago
            else:
                spool_dir = self.svc.settings.tmp_dir
                spool_dir.mkdir(parents=True, exist_ok=True)
                spool = spool_dir / f"proxy-{wanted.sha256}-{os.urandom(4).hex()}"
                spool.touch()
                download = self._running[wanted.sha256] = Download(wanted, spool)
                reader = open(spool, "rb")  # noqa: SIM115 - handed over
                threading.Thread(target=self._run, args=(download,), daemon=True,
                                 name=f"proxy-{wanted.sha256[:12]}").start()  # fmt: skip
                return download, reader
        running.wait(timeout=60)
        return None

    def _run(self, download: Download) -> None:
        """Fetch and check; let the clients finish as soon as the bytes are checked (their
        last byte waits for nothing else); then store them durably and record that."""
        wanted = download.wanted
        try:
            failed = self._fetch(download)
        except UpstreamError as exc:
            failed = str(exc)
        except Exception as exc:  # noqa: BLE001 - every waiter must hear how it ended
            log.exception("proxy: fetching %s failed", wanted.filename)
            failed = f"fetching failed ({type(exc).__name__})"
        download.finish(failed)
        try:
            if failed is None:
                self.svc.store.put_file(blob_key(wanted.sha256), download.spool)
                retrying(self.svc.engine, lambda s: _stored(s, wanted, download.written))
            else:
                log.warning("proxy: %s from %s refused: %s", wanted.filename,
                            wanted.upstream.name, failed)  # fmt: skip
                retrying(self.svc.engine, lambda s: _audit(s, wanted, "file", wanted.url,
                                                           wanted.sha256, f"refused: {failed}"))  # fmt: skip
        except Exception:  # noqa: BLE001 - served, not kept: the next request fetches again
            log.exception("proxy: storing %s failed", wanted.filename)
        finally:
            with self._lock:
                self._running.pop(wanted.sha256, None)
            # The spool is stored (moved) or refused; a reader that has it open keeps reading.
            download.spool.unlink(missing_ok=True)

    def _fetch(self, download: Download) -> str | None:
        """Stream the upstream's bytes into the spool; why they are refused, or None."""
        wanted = download.wanted
        digest, written = hashlib.sha256(), 0
        # The bytes as stored upstream (they are hashed as they come): no content coding.
        headers = {**wanted.upstream.headers_for(wanted.url), "Accept-Encoding": "identity"}
        with self.client.stream(wanted.upstream.name, wanted.url, headers) as r:
            if r.status_code != 200:
                return f"the upstream answered {r.status_code}"
            # Unbuffered: each chunk goes straight to the kernel, where readers see it.
            with open(download.spool, "wb", buffering=0) as out:
                for chunk in r.iter_raw():  # as received: no re-chunking, no decoding
                    written += len(chunk)
                    if wanted.size is not None and written > wanted.size:
                        return f"more bytes than the {wanted.size} the page listed"
                    digest.update(chunk)
                    view = memoryview(chunk)
                    while view:  # a raw write may take part of it
                        taken = out.write(view)
                        if not taken:
                            raise OSError("the spool took no bytes")
                        view = view[taken:]
                    download.progress(written)
        # Not flushed to disk here: the store's put_file makes the blob durable, after the
        # clients have their bytes.
        if wanted.size is not None and written != wanted.size:
            return f"{written} bytes, not the {wanted.size} the page listed"
        if digest.hexdigest() != wanted.sha256:
            return "its sha256 is not the one the page listed"
        return None


def _stored(s: Session, wanted: Wanted, size: int) -> None:
    row = s.get(ProxiedFile, wanted.sha256)
    if row is not None:  # the size as stored: what the quota counts
        row.stored, row.last_used, row.size = True, datetime.now(UTC), size
    _audit(s, wanted, "file", wanted.url, wanted.sha256, "stored")


def _audit(s: Session, wanted: Wanted, kind: str, url: str, sha256: str, outcome: str) -> None:
    audit.record(s, project=wanted.project, upstream=wanted.upstream.name, kind=kind, url=url,
                 sha256=sha256, decision=wanted.decision, outcome=outcome)  # fmt: skip


#: A PEP 658 metadata file is a few kB; a larger answer is not one.
MAX_METADATA = 16 * 2**20


def fetch_metadata(svc, client: Client, wanted: Wanted, metadata_sha256: str) -> str | None:  # noqa: ANN001
    """Fetch a file's PEP 658 metadata (``<url>.metadata``), check it against the sha256 the
    page listed and store it; why it was refused, or None."""
    refused = _fetch_metadata(svc, client, wanted, metadata_sha256)
    target = wanted.url + ".metadata"
    retrying(svc.engine, lambda s: _audit(s, wanted, "metadata", target, metadata_sha256,
                                          f"refused: {refused}" if refused else "stored"))  # fmt: skip
    return refused


def _fetch_metadata(svc, client: Client, wanted: Wanted, metadata_sha256: str) -> str | None:  # noqa: ANN001
    upstream, target = wanted.upstream, wanted.url + ".metadata"
    body = bytearray()
    try:
        with client.stream(upstream.name, target, upstream.headers_for(target)) as r:
            if r.status_code != 200:
                return f"the upstream answered {r.status_code}"
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > MAX_METADATA:
                    return f"over {MAX_METADATA} bytes"
    except UpstreamError as exc:
        return str(exc)
    if hashlib.sha256(body).hexdigest() != metadata_sha256:
        return "its sha256 is not the one the page listed"
    svc.store.put_bytes(blob_key(metadata_sha256), bytes(body))
    retrying(svc.engine, lambda s: _mark_metadata_stored(s, wanted.sha256))
    return None


def _mark_metadata_stored(s: Session, sha256: str) -> None:
    row = s.get(ProxiedFile, sha256)
    if row is not None:
        row.metadata_stored = True


#: A stored file's ``last_used`` is written at most this often (seconds): eviction's order
#: needs no finer clock, and a download should not be a write each time.
USE_GRANULARITY = 3600


def used(s: Session, sha256: str) -> None:
    row = s.get(ProxiedFile, sha256)
    if row is not None:
        row.last_used = datetime.now(UTC)
