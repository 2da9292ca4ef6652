"""Every storage contract test runs against each backend: the local folder and a real S3
(SeaweedFS)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.storage import BlobStore, LocalBlobStore, open_store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
        return
    weed = request.getfixturevalue("seaweedfs")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in weed.env().items():
            mp.setenv(key, value)
        yield open_store(f"s3://{weed.new_bucket()}/blobs?endpoint_url={weed.endpoint}")
