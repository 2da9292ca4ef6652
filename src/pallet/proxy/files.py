"""Upstream files: fetched once, streamed to the client while they are hashed and spooled, and
stored by sha256 in the content store only when the hash is the one the upstream's page
listed. The client whose request started the download gets the bytes as they arrive, from
memory (``Live``); clients that ask for the file while it is downloading join that download and
read the spool file as it grows. The upstream is asked once.

A download whose bytes do not match (hash, or a size the page gave) is never stored, and its
clients' responses are cut short, so no installer takes it for the file (they check hashes as
well). A crash between storing the blob and recording it leaves an orphan blob, which garbage
collection finds like any other.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session
from starlette.concurrency import iterate_in_threadpool

from pallet.db import audit
from pallet.db.models import ProxiedFile
from pallet.db.session import retrying
from pallet.proxy.upstreams import Client, Upstream, UpstreamError
from pallet.storage import blob_key
from pallet.storage.local import write_all

log = logging.getLogger("pallet.proxy")
CHUNK = 256 * 1024  # per read of the spool for a client: 20 clients, 5 MiB
#: How far the starting client's in-memory feed may run ahead of what it has sent; past that
#: it reads on from the spool, so a slow client never holds a file in memory.
LIVE_BUFFER = 4 * 2**20
SEND_PIECE = 512 * 1024  # the most the feed joins into one send when chunks pile up


class Live:
    """The starting client's feed: the chunks as the fetch thread receives them, handed over in
    memory (no spool read, no thread hop per chunk). The event loop is woken only when the
    client waits for more, not once per chunk. Guarded by the download's lock."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.chunks: deque[bytes] = deque()
        self.buffered = 0  # bytes in ``chunks``
        self.ended = False  # the download finished: nothing more comes
        self.dropped = False  # fell LIVE_BUFFER behind: the rest comes from the spool
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> bool:
        """From the fetch thread; False once the loop is gone (the server stopping)."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None:
            try:
                self.loop.call_soon_threadsafe(_resolve, waiter)
            except RuntimeError:
                return False
        return True


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


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
        self._live: list[Live] = []

    def received(self, chunk: bytes, written: int) -> None:
        """From the fetch thread: ``chunk`` is in the spool, which now holds ``written`` bytes;
        it goes to the live feed too while that keeps up."""
        with self._changed:
            self.written = written
            for live in list(self._live):
                if live.buffered + len(chunk) > LIVE_BUFFER:
                    live.dropped = True  # behind: it reads on from the spool
                else:
                    live.chunks.append(chunk)
                    live.buffered += len(chunk)
                if not live.wake() or live.dropped:
                    self._live.remove(live)
            self._changed.notify_all()

    def finish(self, failed: str | None) -> None:
        with self._changed:
            self.done, self.failed = True, failed
            for live in self._live:
                live.ended = True
                live.wake()
            self._live.clear()
            self._changed.notify_all()

    def follow(self, loop: asyncio.AbstractEventLoop) -> Live:
        live = Live(loop)
        with self._changed:
            if self.written or self.done:  # too late to have every byte from memory
                live.dropped = True
            else:
                self._live.append(live)
        return live

    def _take(self, live: Live) -> bytes | None:
        """The next piece of the feed: the chunks that have piled up, joined up to SEND_PIECE
        (one send instead of many costs less than the copy); None when there are none yet
        (``live.waiter`` is set)."""
        with self._changed:
            if live.chunks:
                taken = [live.chunks.popleft()]
                size = len(taken[0])
                while live.chunks and size + len(live.chunks[0]) <= SEND_PIECE:
                    taken.append(live.chunks.popleft())
                    size += len(taken[-1])
                live.buffered -= size
                return taken[0] if len(taken) == 1 else b"".join(taken)
            if not (live.ended or live.dropped):
                live.waiter = live.loop.create_future()
            return None

    async def stream(self, live: Live, reader: BinaryIO, timeout: float) -> AsyncIterator[bytes]:
        """The starting client's bytes: from memory while it keeps up, then from the spool. The
        latest chunk waits for the next one, or for the bytes to be checked, so a download that
        fails never reaches a client whole."""
        sent, held = 0, None
        try:
            while True:
                taken = self._take(live)
                if taken is None:
                    if live.waiter is None:
                        break  # ended or dropped
                    await live.waiter
                    continue
                if held is not None:
                    yield held
                    sent += len(held)
                held = taken
            if live.ended and not live.dropped:
                if self.failed:
                    raise UpstreamError(f"{self.wanted.filename}: {self.failed}")
                if held is not None:
                    yield held
                return
            reader.seek(sent)
            async for data in iterate_in_threadpool(self.chunks(reader, timeout, sent)):
                yield data
        finally:
            with self._changed:
                if live in self._live:
                    self._live.remove(live)
            reader.close()

    def wait(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.done, timeout=timeout)

    def chunks(self, reader: BinaryIO, timeout: float, sent: int = 0) -> Iterator[bytes]:
        """The bytes from ``sent`` on as they arrive, read from ``reader`` (the spool, opened
        while it existed and positioned there), all but the last one until the download is
        checked: a download that fails, or stalls for ``timeout``, raises, which cuts the
        response short of its length."""
        with reader as f:

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

    def join_or_start(
        self, wanted: Wanted, loop: asyncio.AbstractEventLoop
    ) -> tuple[Download, BinaryIO, Live | None] | None:
        """The download of ``wanted`` in flight, or a new one, with a reader of its spool (and,
        for the request that starts it, the feed from memory, on ``loop``); None when the one
        in flight has just stored its file (serve it from the store)."""
        with self._lock:
            running = self._running.get(wanted.sha256)
            if running is not None:
                try:
                    return running, open(running.spool, "rb"), None  # noqa: SIM115 - handed over
                except FileNotFoundError:
                    pass  # moved into the store a moment ago
            else:
                spool_dir = self.svc.settings.tmp_dir
                spool_dir.mkdir(parents=True, exist_ok=True)
                spool = spool_dir / f"proxy-{wanted.sha256}-{os.urandom(4).hex()}"
                spool.touch()
                download = self._running[wanted.sha256] = Download(wanted, spool)
                reader = open(spool, "rb")  # noqa: SIM115 - handed over
                live = download.follow(loop)  # before the first byte can arrive
                threading.Thread(target=self._run, args=(download,), daemon=True,
                                 name=f"proxy-{wanted.sha256[:12]}").start()  # fmt: skip
                return download, reader, live
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
        """Stream the upstream's bytes into the spool and the live feed; why they are refused,
        or None. Each chunk is hashed and written as it arrives, while it is in the CPU's cache
        (handing it to another thread, or writing in larger batches, was measured slower)."""
        wanted = download.wanted
        digest, written = hashlib.sha256(), 0
        # The bytes as stored upstream (they are hashed as they come): no content coding.
        headers = {**wanted.upstream.headers_for(wanted.url), "Accept-Encoding": "identity"}
        with self.client.stream(wanted.upstream.name, wanted.url, headers) as r:
            if r.status_code != 200:
                return f"the upstream answered {r.status_code}"
            # Unbuffered: each chunk goes straight to the kernel, where readers see it.
            with open(download.spool, "wb", buffering=0) as out:
                for chunk in self.client.body(r):
                    written += len(chunk)
                    if wanted.size is not None and written > wanted.size:
                        return f"more bytes than the {wanted.size} the page listed"
                    digest.update(chunk)
                    write_all(out.fileno(), (chunk,))
                    download.received(chunk, written)
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
