"""``pallet fsck``: check the blob store against the database (missing, corrupt and orphan
blobs); ``--repair`` removes orphans older than the grace period and restores trashed blobs."""

from __future__ import annotations

import argparse
import json

from pallet.cli.gc import add_grace, open_services


def register(sub, common) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "fsck", help="check blobs against the database: missing, corrupt and orphan blobs"
    )
    common(p)
    add_grace(p)
    p.add_argument(
        "--repair",
        action="store_true",
        help="first remove orphans older than the grace period and restore trashed blobs "
        "that files still use (missing and corrupt blobs cannot be repaired)",
    )
    p.add_argument("--quick", action="store_true", help="do not read blobs (no hash check)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pallet.fsck import check, render

    services = open_services(args)
    try:
        report = check(services, grace=args.grace, repair=args.repair, verify=not args.quick)
    finally:
        services.close()
    print(json.dumps(report.as_dict(), indent=2) if args.json else render(report))
    return 0 if report.problems == 0 else 1
