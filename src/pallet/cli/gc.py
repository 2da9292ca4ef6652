"""``pallet gc``: expire sessions, remove what they staged, and collect what crashes left in the
blob store (the server also sweeps itself)."""

from __future__ import annotations

import argparse
import json

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


def run(args: argparse.Namespace) -> int:
    from pallet.gc import sweep

    services = open_services(args)
    try:
        counts = sweep(services, grace=args.grace)
    finally:
        services.close()
    if args.json:
        print(json.dumps(counts))
    else:
        print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return 0
