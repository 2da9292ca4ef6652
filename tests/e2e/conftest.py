"""Fixtures for the end-to-end tests.

When ``PALLET_TEST_POSTGRES_URL`` is set, every module runs once on SQLite and once on a fresh
PostgreSQL database per server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import (
    POSTGRES_ENV,
    RUNNING,
    Dists,
    PostgresDatabases,
    Server,
    ServerFactory,
    client_env,
)


def _database_params() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get(POSTGRES_ENV) else ["sqlite"]


@pytest.fixture(scope="module", params=_database_params())
def database(request: pytest.FixtureRequest) -> Iterator[PostgresDatabases | None]:
    """``None`` for the embedded SQLite default, else a factory of fresh PostgreSQL databases."""
    if request.param == "sqlite":
        yield None
        return
    databases = PostgresDatabases(os.environ[POSTGRES_ENV])
    try:
        yield databases
    finally:
        databases.drop_all()


@pytest.fixture(scope="module")
def server_factory(
    tmp_path_factory: pytest.TempPathFactory, database: PostgresDatabases | None
) -> Iterator[ServerFactory]:
    factory = ServerFactory(tmp_path_factory.mktemp("pallet-e2e"), database)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> Server:
    """One public server shared by the module; tests use distinct project names."""
    return server_factory()


@pytest.fixture(scope="module", params=["local", "s3"])
def backend_server(request: pytest.FixtureRequest, server_factory: ServerFactory) -> Server:
    """A server per storage backend: the embedded local folder, and a real S3 (SeaweedFS)."""
    if request.param == "local":
        return server_factory()
    weed = request.getfixturevalue("seaweedfs")
    bucket = weed.new_bucket()
    mp = pytest.MonkeyPatch()
    for key, value in weed.env().items():
        mp.setenv(key, value)
    request.addfinalizer(mp.undo)
    return server_factory(
        extra_args=("--storage-url", f"s3://{bucket}?endpoint_url={weed.endpoint}")
    )


@pytest.fixture(scope="module")
def private_server(server_factory: ServerFactory) -> Server:
    return server_factory(private=True)


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    return Dists(tmp_path_factory.mktemp("dists"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return client_env(tmp_path)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ANN201
    """Attach the logs of running servers to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in list(RUNNING):
            report.sections.append(
                (f"pallet serve log (port {server.port}, {server.log_path})", server.log())
            )
