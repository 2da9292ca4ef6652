"""The cluster fixture: PostgreSQL, SeaweedFS, three replicas and nginx (see ``cluster.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.cluster import (
    CLIENT_DEADLINE,
    Cluster,
    require_postgres,
    require_uv_direct,
    start_cluster,
)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh cluster for one test, ended (by PID) and removed afterwards. Never skipped: without
    ``PALLET_TEST_POSTGRES_URL`` (set by ``make test``) it fails, saying so."""
    require_postgres()
    require_uv_direct()
    started = start_cluster(tmp_path / "cluster")
    try:
        yield started
    finally:
        CLIENT_DEADLINE[0] = float("inf")
        try:
            started.stop()
        finally:
            started.weed.stop()
            started.postgres.destroy()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ANN201
    """Attach the replicas' and nginx's logs to a failing cluster test's report."""
    outcome = yield
    report = outcome.get_result()
    running = getattr(item, "funcargs", {}).get("cluster")
    if report.failed and isinstance(running, Cluster):
        report.sections.append(("cluster logs", running.logs()))
