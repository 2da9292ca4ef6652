"""Fixtures of the fuzz suite: the real app in-process (SQLite and PostgreSQL), with server
exceptions answered as they would be in production (a 500 problem) instead of raised into the
test, the ``pallet`` logger captured, and a world to start from."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pallet.app import create_app
from pallet.config import Settings
from pallet.db.migrate import upgrade
from pallet.services import Services
from tests.fuzz.harness import Fuzzer, LogCapture, Schemas
from tests.fuzz.world import World


@pytest.fixture
def pallet_logs() -> Iterator[LogCapture]:
    handler = LogCapture()
    logger = logging.getLogger("pallet")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def make_world(
    database_url: str, tmp_path: Path, pallet_logs: LogCapture, request: pytest.FixtureRequest
) -> Iterator[Callable[..., tuple[World, Fuzzer]]]:
    opened: list[tuple[TestClient, Services]] = []

    def factory(**overrides: object) -> tuple[World, Fuzzer]:
        data = tmp_path / f"data{len(opened)}"
        overrides.setdefault("allowed_hosts", "testserver")  # Starlette's TestClient's Host
        settings = Settings(data_dir=data, database_url=database_url, **overrides).resolved()
        services = Services.from_settings(settings)
        upgrade(services.engine)
        client = TestClient(
            create_app(services=services), raise_server_exceptions=False, follow_redirects=False
        )
        client.__enter__()
        opened.append((client, services))
        world = World(
            client, services, tmp_path / f"dists{len(opened)}", upload_root=settings.upload_root
        )
        world.setup()
        pallet_logs.take()  # setup is not under test
        fuzzer = Fuzzer(
            request.node.name, client, services, pallet_logs, Schemas(settings.upload_root)
        )
        return world, fuzzer

    yield factory
    for client, services in opened:
        client.__exit__(None, None, None)
        services.close()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    """With ``pytest tests/fuzz``: the totals of every fuzz test (xdist workers included)."""
    totals = {"fuzz_examples": 0, "fuzz_requests": 0, "fuzz_5xx": 0}
    seen = False
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", []):
                if name in totals and getattr(report, "when", "") == "call":
                    totals[name] += value
                    seen = True
    if seen:
        terminalreporter.write_sep("-", "fuzz totals")
        terminalreporter.write_line(
            f"{totals['fuzz_examples']} examples, {totals['fuzz_requests']} requests, "
            f"{totals['fuzz_5xx']} 5xx"
        )
