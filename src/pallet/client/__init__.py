"""The Upload 2.0 (PEP 694) client behind ``pallet publish``, usable as a library.

``publish(["dist/*"], url=..., token=...)`` discovers the index's upload API, uploads each
release in its own publishing session with the best mechanism both sides support (falling back
to the legacy form upload on indexes without Upload 2.0) and returns one ``ReleaseResult`` per
release.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from pallet.client.credentials import Credentials, resolve
from pallet.client.dists import Dist, DistError, expand, group, inspect
from pallet.client.progress import Reporter
from pallet.client.publisher import Options, Publisher
from pallet.client.results import FileResult, ReleaseResult
from pallet.client.sessions import FileUpload, PublishingSession
from pallet.client.transport import Api, ClientError, Transport

__all__ = [
    "Api",
    "ClientError",
    "Credentials",
    "Dist",
    "DistError",
    "FileResult",
    "FileUpload",
    "Options",
    "Publisher",
    "PublishingSession",
    "ReleaseResult",
    "Transport",
    "collect",
    "publish",
]


def collect(patterns: Iterable[str]) -> dict[tuple[str, str], list[Dist]]:
    """Expand globs, read every dist's own metadata, group the files by release."""
    return group(inspect(path) for path in expand(patterns))


def publish(
    patterns: Iterable[str],
    *,
    url: str | None = None,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    repository: str | None = None,
    options: Options | None = None,
    reporter: Reporter | None = None,
) -> list[ReleaseResult]:
    creds = resolve(
        url=url,
        token=token,
        username=username,
        password=password,
        repository_name=repository,
        env=os.environ,
        cwd=Path.cwd(),
    )
    releases = collect(patterns)
    transport = Transport(creds.auth())
    try:
        return Publisher(transport, creds.url, options, reporter).publish(releases)
    finally:
        transport.close()
