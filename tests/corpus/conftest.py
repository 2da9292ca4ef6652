"""Fixtures for the corpus suite: the cached corpus, fresh servers, and the shared report folder.

The corpus suite runs on SQLite only (it is about what files get in, not about the database),
so it does not take the e2e suite's PostgreSQL parametrisation.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.corpus.fetch import Dist, ensure, load_manifest
from tests.e2e.conftest import pytest_runtest_makereport  # noqa: F401 - server logs on failure
from tests.e2e.support import ServerFactory


@dataclass(frozen=True)
class Corpus:
    dists: list[Dist]
    paths: dict[str, Path]

    def path(self, dist: Dist) -> Path:
        return self.paths[dist.filename]

    def by_name(self) -> dict[str, Dist]:
        return {d.filename: d for d in self.dists}


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    """Every manifest file, fetched once into the cache (a cached run downloads nothing)."""
    started = time.monotonic()
    dists = load_manifest()
    paths = ensure(dists, log=lambda msg: print(f"corpus: {msg}", file=sys.stderr, flush=True))
    print(
        f"corpus: {len(paths)} files ready in {time.monotonic() - started:.1f}s",
        file=sys.stderr,
    )
    return Corpus(dists, paths)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Fresh ``pallet serve`` processes on SQLite; each test starts its own."""
    factory = ServerFactory(tmp_path_factory.mktemp("corpus-servers"), None)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the acceptance tables go: the run's temp root, shared by xdist workers."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = root / "corpus-acceptance"
    path.mkdir(parents=True, exist_ok=True)
    return path
