"""``pallet serve --workers N``: the parent keeps N workers serving (pallet.cli.supervisor).

A worker that dies is replaced; when the parent dies, even by SIGKILL, its workers stop rather
than serve on as orphans; SIGTERM stops them all (every other e2e test's teardown relies on it).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.e2e.support import http_get, start_server

DEADLINE = 30.0


def _workers(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _until(condition, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE:.0f}s: {what}"
        time.sleep(0.1)


def test_a_dead_worker_is_replaced_and_the_workers_stop_with_their_parent(tmp_path: Path) -> None:
    server = start_server(tmp_path, extra_args=("--workers", "2"))
    parent = server.process.pid
    try:
        _until(lambda: len(_workers(parent)) == 2, "two workers")
        first = _workers(parent)
        os.kill(first[0], signal.SIGKILL)
        _until(
            lambda: len(_workers(parent)) == 2 and first[0] not in _workers(parent),
            "a replacement for the killed worker",
        )
        for _ in range(8):  # both workers answer, whichever takes the connection
            assert http_get(f"{server.url}/_/health").status == 200
        workers = _workers(parent)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        _until(lambda: not any(_alive(w) for w in workers), "the orphaned workers' exit")
    finally:
        server.stop()
        for pid in _workers(parent):
            os.kill(pid, signal.SIGKILL)


def test_sigterm_stops_the_parent_and_every_worker(tmp_path: Path) -> None:
    server = start_server(tmp_path, extra_args=("--workers", "2"))
    parent = server.process.pid
    _until(lambda: len(_workers(parent)) == 2, "two workers")
    workers = _workers(parent)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=DEADLINE) == 0
    assert not any(_alive(w) for w in workers)
    server.stop()
