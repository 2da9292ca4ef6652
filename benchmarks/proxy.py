"""The upstream proxy: a cached proxied page against a private one, and a first download
against the upstream's own speed, side by side with devpi-server's mirror index on the same
upstream.

In one run, on loopback:

- the upstream: a ``pallet serve --workers 2`` holding project ``big`` (500 releases, 1,000
  files) and ``--files`` wheels of ``--size`` bytes each;
- Pallet proxying it (``--upstream``, ``--workers 2``), which also holds a private project
  ``mine`` of the same shape;
- devpi-server with a mirror index of the same upstream (one process, its default threads).

Pages (wrk, PEP 503 HTML; 1 connection p50/p99, 32 connections req/s and p99): Pallet's
private page, its cached proxied page (after a first visit; revalidated every 600 s), the
upstream's own page (the same bytes, direct), devpi's cached mirror page.

First downloads: each wheel once through Pallet, once through devpi, once straight from the
upstream (the limit), in MB/s (10^6 B/s); Pallet's peak RSS while it streams a file it is
fetching. Issue 17's targets: the cached proxied page at >= 80% of the private page's req/s,
a first download at >= 80% of the upstream's speed.

    python benchmarks/proxy.py [--quick] [--size 100M] [--files 3] [--seconds 8] [--no-peer]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import (  # noqa: E402
    BIN,
    RssSampler,
    Table,
    exit_cleanly_on_sigterm,
    start_devpi,
    start_pallet,
)
from web import measure, seed  # noqa: E402

from pallet.config import parse_size  # noqa: E402

HTML = {"Accept": "text/html"}


def wheels(directory: Path, count: int, size: int) -> list[Path]:
    """``count`` wheels of ``size`` random (incompressible, stored) bytes each."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.dists import make_wheel

    made = []
    for i in range(count):
        folder = directory / f"w{i}"
        folder.mkdir(parents=True)
        made.append(make_wheel(folder, f"payload{i}", "1.0",
                               files={f"payload{i}/data.bin": os.urandom(size)},
                               compression=zipfile.ZIP_STORED))  # fmt: skip
    return made


def timed_download(url: str, expected: str) -> float:
    """Seconds to fetch ``url`` whole; checks its sha256."""
    digest = hashlib.sha256()
    started = time.perf_counter()
    with httpx.stream("GET", url, timeout=600, follow_redirects=True) as r:
        r.raise_for_status()
        for chunk in r.iter_bytes(1 << 20):
            digest.update(chunk)
    took = time.perf_counter() - started
    if digest.hexdigest() != expected:
        raise RuntimeError(f"{url}: wrong bytes")
    return took


def file_url(page_url: str, filename: str, headers: dict | None = None) -> str:
    """The absolute URL a PEP 503 page gives ``filename``."""
    body = httpx.get(page_url, headers=headers or HTML, timeout=120, follow_redirects=True)
    body.raise_for_status()
    marker = f">{filename}<"
    before = body.text[: body.text.index(marker)]
    href = before[before.rindex('href="') + 6 :].split('"', 1)[0].split("#", 1)[0]
    return str(httpx.URL(str(body.url)).join(href.replace("&amp;", "&")))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="100M")
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="3 s per figure, 1 file of 20M")
    parser.add_argument("--no-peer", action="store_true", help="leave devpi-server out")
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    seconds = 3 if args.quick else args.seconds
    size = parse_size("20M" if args.quick else args.size)
    count = 1 if args.quick else args.files
    workdir = Path(tempfile.mkdtemp(prefix="pallet-proxy-bench-"))
    procs = []
    try:
        up_data, proxy_data = workdir / "upstream", workdir / "proxy"
        seed(up_data, 500, "big")
        seed(proxy_data, 500, "mine")
        payloads = wheels(workdir / "wheels", count, size)
        imported = subprocess.run(
            [str(BIN / "pallet"), "import", "--quiet", "--data-dir", str(up_data),
             *map(str, payloads)], capture_output=True, text=True, timeout=1800)  # fmt: skip
        if imported.returncode:
            raise RuntimeError(f"import failed: {imported.stdout}{imported.stderr}")
        upstream, up_base = start_pallet(workdir, up_data, workers=2)
        procs.append(upstream)
        up_simple = f"{up_base}/simple/"
        (workdir / "proxy-run").mkdir()  # its own log
        proxy, base = start_pallet(workdir / "proxy-run", proxy_data, workers=2,
                                   extra=("--upstream", f"up={up_simple}"))  # fmt: skip
        procs.append(proxy)
        httpx.get(f"{base}/simple/big/", timeout=120).raise_for_status()  # the first visit
        runs = {
            "Pallet, private page": f"{base}/simple/mine/",
            "Pallet, proxied page (cached)": f"{base}/simple/big/",
            "upstream, direct": f"{up_base}/simple/big/",
        }
        devpi = peer = None
        if not args.no_peer:
            devpi, peer = start_devpi(workdir)
            procs.append(devpi)
            with httpx.Client(base_url=peer, auth=("bench", "bench"), timeout=60) as c:
                c.put("/bench/mirror", json={"type": "mirror", "mirror_url": up_simple,
                                             "mirror_cache_expiry": 600}).raise_for_status()  # fmt: skip
            httpx.get(f"{peer}/bench/mirror/+simple/big/", timeout=300).raise_for_status()
            runs["devpi mirror page (cached)"] = f"{peer}/bench/mirror/+simple/big/"
        results = measure({name: (url, HTML) for name, url in runs.items()}, seconds)
        pages = Table("Proxy: a page of 1,000 files (wrk)", list(runs))
        pages.add("1 conn p50 (ms)", {n: f"{r[0].p50_ms:.2f}" for n, r in results.items()})
        pages.add("1 conn p99 (ms)", {n: f"{r[0].p99_ms:.2f}" for n, r in results.items()})
        pages.add("32 conn (req/s)", {n: r[1].rate() for n, r in results.items()})
        pages.add("32 conn p99 (ms)", {n: f"{r[1].p99_ms:.2f}" for n, r in results.items()})
        private, proxied = (results[k][1].rps for k in list(runs)[:2])
        pages.notes.append(f"cached proxied page / private page: {proxied / private:.0%} "
                           "of the req/s (target >= 80%)")  # fmt: skip
        pages.print()

        speeds: dict[str, list[float]] = {
            "upstream, direct (limit)": [],
            "Pallet, first download": [],
        }
        if peer:
            speeds["devpi mirror, first download"] = []
        peak = 0
        cpu: dict[str, float] = {"upstream": 0.0, "Pallet": 0.0, "client": 0.0}
        for wheel in payloads:
            name = wheel.name
            project = name.split("-")[0]
            expected = hashlib.sha256(wheel.read_bytes()).hexdigest()
            mb = wheel.stat().st_size / 1e6
            direct = file_url(f"{up_simple}{project}/", name)
            speeds["upstream, direct (limit)"].append(mb / timed_download(direct, expected))
            through = file_url(f"{base}/simple/{project}/", name)
            before = (upstream.cpu_seconds(), proxy.cpu_seconds(), time.process_time())
            with RssSampler(proxy) as rss:
                speeds["Pallet, first download"].append(mb / timed_download(through, expected))
            after = (upstream.cpu_seconds(), proxy.cpu_seconds(), time.process_time())
            for key, start, end in zip(cpu, before, after, strict=True):
                cpu[key] += (end - start) / mb * 100
            peak = max(peak, rss.peak_single)
            if peer:
                via_devpi = file_url(f"{peer}/bench/mirror/+simple/{project}/", name)
                speeds["devpi mirror, first download"].append(
                    mb / timed_download(via_devpi, expected)
                )
        downloads = Table(f"Proxy: first downloads of {count} x {size / 1e6:.0f} MB", list(speeds))
        downloads.add("MB/s, median", {k: f"{statistics.median(v):.0f}" for k, v in speeds.items()})
        downloads.add("MB/s, min", {k: f"{min(v):.0f}" for k, v in speeds.items()})
        ratio = statistics.median(speeds["Pallet, first download"]) / statistics.median(
            speeds["upstream, direct (limit)"]
        )
        downloads.notes.append(
            f"Pallet's first download / the upstream's: {ratio:.0%} (target >= 80%)"
        )
        downloads.notes.append(
            f"Pallet's largest process while streaming: {peak / 1024:.0f} MB RSS"
        )
        downloads.notes.append(
            "CPU seconds per 100 MB of a first download through Pallet: "
            + ", ".join(f"{k} {v / count:.2f}" for k, v in cpu.items())
            + f" (on {os.cpu_count()} cores: the three share them)"
        )
        downloads.print()
        return 0
    finally:
        for proc in reversed(procs):
            if proc is not None:
                proc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
