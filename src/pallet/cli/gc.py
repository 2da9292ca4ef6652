"""``pallet gc``: expire sessions and remove what they staged (the server also sweeps itself)."""

from __future__ import annotations

import argparse

from pallet.cli.common import migrated_engine, settings_from_args


def register(sub, common) -> None:  # noqa: ANN001
    p = sub.add_parser("gc", help="expire Upload 2.0 sessions and delete their staged blobs")
    common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pallet.gc import sweep
    from pallet.services import Services

    settings = settings_from_args(args)
    migrated_engine(settings).dispose()
    services = Services.from_settings(settings)
    try:
        counts = sweep(services)
    finally:
        services.close()
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return 0
