"""What a mechanism hands to ``complete``: the received bytes' digests and where they are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pallet.upload.spool import Digests


@dataclass
class Staged:
    digests: Digests
    path: Path | None = None  # a local file that complete consumes (moves into the store)
    key: str | None = None  # or an object in the store, verified in place and moved there
    final: bool = False  # the bytes are at their content address already: nothing to move
