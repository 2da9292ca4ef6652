"""The background duties of every server process, each done once across all replicas.

Every few seconds a process finishes deferred work whose owner died (pallet.upload.v2.deferred);
every ``PALLET_GC_INTERVAL`` seconds it offers to sweep (pallet.gc), and the process that takes
the sweep lease does it. Leases, not a leader: any replica may stop at any time, and another
one takes its duties over once its leases lapse.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

from starlette.concurrency import run_in_threadpool

from pallet import telemetry
from pallet.gc import sweep_exclusively
from pallet.services import Services
from pallet.upload.v2.deferred import recover

log = logging.getLogger("pallet.gc")

#: Seconds between looks for deferred work left behind.
RECOVERY_INTERVAL = 5.0
#: The in-server sweep lists the whole content store at most this often (seconds).
SCAN_INTERVAL = 3600


async def periodic(svc: Services) -> None:
    """The loop each server process runs (cancelled on shutdown)."""
    interval = svc.settings.gc_interval
    tick = min(RECOVERY_INTERVAL, interval) if interval > 0 else RECOVERY_INTERVAL
    next_sweep = time.monotonic() + interval
    last_scan = float("-inf")
    while True:
        await asyncio.sleep(tick)
        try:
            recovered = await run_in_threadpool(recover, svc)
            if any(recovered.values()):
                log.info("recovered: %s", recovered)
        except Exception:  # noqa: BLE001 - the next look retries
            log.exception("recovering deferred work failed")
        if interval <= 0 or time.monotonic() < next_sweep:
            continue
        next_sweep = time.monotonic() + interval
        scan = time.monotonic() - last_scan >= SCAN_INTERVAL
        try:
            counts = await run_in_threadpool(functools.partial(sweep_exclusively, svc, scan=scan))
        except Exception:  # noqa: BLE001 - the next sweep retries
            log.exception("gc sweep failed")
            continue
        if counts is None:
            continue  # another replica is sweeping
        if scan:
            last_scan = time.monotonic()
        telemetry.record_gc(counts)
        if any(counts.values()):
            log.info("gc: %s", counts)
