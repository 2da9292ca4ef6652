"""In-process app fixtures: the real app, a real database (SQLite and PostgreSQL) and the local
blob store, driven through Starlette's TestClient."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pallet.app import create_app
from pallet.auth.tokens import create_token
from pallet.config import Settings
from pallet.db.migrate import upgrade
from pallet.db.session import write_session
from pallet.services import Services


@dataclass
class Index:
    client: TestClient
    services: Services
    tmp: Path

    def token(self, scope: str = "upload", projects: list[str] | None = None) -> str:
        with write_session(self.services.engine) as s:
            _row, token = create_token(
                s, self.services.settings.secret_key, scope=scope, projects=projects
            )
        return token

    def blob_files(self) -> list[Path]:
        root = self.services.settings.data_dir / "blobs" / "sha256"
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

    def spool_files(self) -> list[Path]:
        tmp = self.services.settings.tmp_dir
        return sorted(tmp.iterdir()) if tmp.exists() else []


@pytest.fixture
def make_index(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Index]]:
    made: list[Index] = []

    def factory(**overrides: object) -> Index:
        data = tmp_path / f"data{len(made)}"
        overrides.setdefault("allowed_hosts", "testserver")  # Starlette's TestClient's Host
        overrides.setdefault("database_url", database_url)
        settings = Settings(data_dir=data, **overrides).resolved()
        services = Services.from_settings(settings)
        upgrade(services.engine)
        # Entered, so one event loop lives as long as the app (as in a real server): background
        # work started by a request (deferred verification, publish) keeps running after it.
        client = TestClient(create_app(services=services)).__enter__()
        index = Index(client, services, tmp_path)
        made.append(index)
        return index

    yield factory
    for index in made:
        index.client.__exit__(None, None, None)
        index.services.close()


@pytest.fixture
def index(make_index: Callable[..., Index]) -> Index:
    return make_index()


@pytest.fixture(params=["local", "s3"])
def store_index(request, make_index, monkeypatch):  # noqa: ANN001, ANN201
    """An index on each blob store backend (the local folder, a real S3)."""
    from tests.api.v2 import index_on

    return index_on(request, make_index, monkeypatch)
