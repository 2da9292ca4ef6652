"""Fixtures shared by every suite: database URLs for SQLite and a real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest


def _postgres_base() -> str | None:
    url = os.environ.get("PALLET_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("PALLET_TEST_POSTGRES_URL is not set: CI must run on PostgreSQL too")
        pytest.skip("PostgreSQL not started (use `make test`)")
    return url


def create_postgres_database(base: str) -> tuple[str, str]:
    import psycopg

    name = f"pallet_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name, name


def drop_postgres_database(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # noqa: ANN001
    """Every database-backed test runs once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pallet.db'}"
        return
    base = _postgres_base()
    url, name = create_postgres_database(base)
    try:
        yield url
    finally:
        drop_postgres_database(base, name)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """One real SeaweedFS S3 gateway per test process (buckets keep tests apart)."""
    from tests.seaweedfs import start_seaweedfs

    weed = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield weed
    finally:
        weed.stop()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "Upload 2.0 conformance suite (tests/conformance)")
    group.addoption("--upload-url", help="Upload 2.0 root of the server under test")
    group.addoption("--index-url", help="simple index URL of the server under test")
    group.addoption("--token", help="upload token for the server under test")
