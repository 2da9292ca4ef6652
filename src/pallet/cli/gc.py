"""``pallet gc``: expire sessions, remove what they staged, and collect what crashes left in the
blob store (the server also sweeps itself)."""

from __future__ import annotations

import argparse
import json
import sys

from pallet.cli.common import existing_index


def add_grace(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--grace",
        type=int,
        metavar="SECONDS",
        help="leave unreferenced blobs, staged objects and spool files younger than this "
        "(env PALLET_GC_GRACE, default 86400); 0 only when nothing is uploading",
    )


def open_services(args: argparse.Namespace):  # noqa: ANN201
    """Services for an index that must already exist: a mistyped --database-url must not make
    every blob of the store look unreferenced."""
    from pallet.index.lookup import SerialLookup
    from pallet.services import Services
    from pallet.storage import open_store

    settings, engine = existing_index(args)
    return Services(settings, engine, open_store(settings.storage_url), SerialLookup(engine))


def register(sub, common) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "gc",
        help="expire Upload 2.0 sessions, delete their staged blobs and collect orphan blobs",
    )
    common(p)
    add_grace(p)
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(func=run)


#: Seconds ``pallet gc`` waits for a server's sweep to finish before giving up.
LEASE_WAIT = 600


def run(args: argparse.Namespace) -> int:
    import time

    from pallet.gc import sweep_exclusively
    from pallet.upload.v2.deferred import recover

    services = open_services(args)
    try:
        counts = recover(services)  # deferred work a dead replica left: finished, not swept
        deadline = time.monotonic() + LEASE_WAIT
        while (swept := sweep_exclusively(services, grace=args.grace)) is None:
            if time.monotonic() > deadline:
                print("error: another process has been sweeping for too long", file=sys.stderr)
                return 1
            time.sleep(1)  # a server is sweeping: one sweep at a time
        counts.update(swept)
    finally:
        services.close()
    if args.json:
        print(json.dumps(counts))
    else:
        print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return 0
