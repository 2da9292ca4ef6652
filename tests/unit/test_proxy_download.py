"""A proxied download's feed to the client that started it: from memory while the client keeps
up, from the spool once it falls behind, and never whole when the bytes turn out wrong. The
fetch thread is played by the test: it writes the spool and reports each chunk, as
``Downloads._fetch`` does."""

from __future__ import annotations

import asyncio
import io
import os
import threading
from pathlib import Path

import pytest

from pallet.proxy import files
from pallet.proxy.files import Download, Wanted
from pallet.proxy.upstreams import Upstream, UpstreamError

KiB = 1024


class CountingReader(io.FileIO):
    """The spool as the client's reader: counts the reads, which the memory feed never needs."""

    reads = 0

    def read(self, size: int = -1) -> bytes:
        type(self).reads += 1
        return super().read(size)


def _download(tmp_path: Path) -> Download:
    wanted = Wanted("0" * 64, "x-1.0-py3-none-any.whl", "http://upstream.example/x.whl", None,
                    Upstream("up", "http://upstream.example/simple/"), "x", "upstream")  # fmt: skip
    spool = tmp_path / "spool"
    spool.touch()
    return Download(wanted, spool)


def _fetch(download: Download, chunks: list[bytes], failed: str | None = None) -> None:
    written = 0
    with open(download.spool, "ab", buffering=0) as out:
        for chunk in chunks:
            out.write(chunk)
            written += len(chunk)
            download.received(chunk, written)
    download.finish(failed)


async def _collect(download: Download, live: files.Live, reader: io.FileIO) -> bytes:
    got = bytearray()
    async for data in download.stream(live, reader, timeout=10):
        got += data
    return bytes(got)


def test_a_client_that_keeps_up_gets_every_byte_from_memory(tmp_path: Path) -> None:
    download = _download(tmp_path)
    chunks = [os.urandom(64 * KiB) for _ in range(40)]  # under LIVE_BUFFER: never behind
    CountingReader.reads = 0

    async def run() -> bytes:
        live = download.follow(asyncio.get_running_loop())
        fetch = threading.Thread(target=_fetch, args=(download, chunks))
        fetch.start()
        try:
            return await _collect(download, live, CountingReader(download.spool))
        finally:
            fetch.join()

    assert asyncio.run(run()) == b"".join(chunks)
    assert CountingReader.reads == 0


def test_a_client_that_falls_behind_reads_on_from_the_spool(tmp_path: Path) -> None:
    download = _download(tmp_path)
    chunks = [os.urandom(64 * KiB) for _ in range(files.LIVE_BUFFER // (64 * KiB) + 40)]
    CountingReader.reads = 0

    async def run() -> bytes:
        live = download.follow(asyncio.get_running_loop())
        _fetch(download, chunks)  # all of it before the client reads anything
        assert live.dropped and live.buffered <= files.LIVE_BUFFER
        return await _collect(download, live, CountingReader(download.spool))

    assert asyncio.run(run()) == b"".join(chunks)
    assert CountingReader.reads > 0


@pytest.mark.parametrize("behind", [False, True])
def test_a_failed_download_never_reaches_the_client_whole(tmp_path: Path, behind: bool) -> None:
    download = _download(tmp_path)
    count = files.LIVE_BUFFER // (64 * KiB) + 4 if behind else 8
    chunks = [os.urandom(64 * KiB) for _ in range(count)]

    async def run() -> bytes:
        live = download.follow(asyncio.get_running_loop())
        _fetch(download, chunks, failed="its sha256 is not the one the page listed")
        got = bytearray()
        with pytest.raises(UpstreamError, match="sha256"):
            async for data in download.stream(live, open(download.spool, "rb"), timeout=10):
                got += data
        return bytes(got)

    got = asyncio.run(run())
    assert len(got) < sum(map(len, chunks))
    assert b"".join(chunks).startswith(got)
