"""Distributions with one hostile thing in them, built fresh for each example: a metadata field,
the metadata file as a whole, or an archive member."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from tests.dists import core_metadata, make_sdist, make_wheel
from tests.fuzz import strategies as fz
from tests.fuzz.world import PROJECT, Dist

METADATA_FIELDS = [
    "Summary",
    "Requires-Python",
    "Requires-Dist",
    "Classifier",
    "Keywords",
    "License",
    "License-Expression",
    "Project-URL",
    "Provides-Extra",
    "Description-Content-Type",
    "Author-email",
    "Home-page",
    "Dynamic",
    "Import-Name",
]


@dataclass
class Hostile:
    dist: Dist
    version: str
    note: str


@st.composite
def hostile_dist(
    draw: st.DrawFn, tmp: Path, version: str | None = None, tag: str | None = None
) -> Hostile:
    """A wheel or sdist whose METADATA/PKG-INFO or members carry one hostile value; a wheel
    only when ``tag`` is given."""
    version = version or f"3.{secrets.randbits(40)}"
    wheel = True if tag else draw(st.booleans(), label="wheel")
    kind = draw(st.integers(0, 4), label="kind")
    metadata = None
    files: dict[str, bytes] = {}
    if kind <= 2:
        field = draw(st.sampled_from(METADATA_FIELDS), label="field")
        value = draw(fz.hostile_text, label="value")
        value = value.replace("\n", " ").replace("\r", " ")[:100_000]
        metadata = core_metadata(PROJECT, version, extra_headers=f"{field}: {value}\n")
        note = f"metadata {field}: {fz.encode(value)[:80]}"
    elif kind == 3:
        metadata = draw(
            st.sampled_from(
                [
                    core_metadata(PROJECT, version, metadata_version="9.9"),
                    core_metadata(PROJECT, version, metadata_version="2." + "9" * 5000),
                    core_metadata("other-project", version),
                    core_metadata(PROJECT, "1." + "9" * 5000),
                    core_metadata(PROJECT, version) + "\x00",
                    "Metadata-Version: 2.4\n",
                    "",
                    core_metadata(PROJECT, version, summary="\x00"),
                    core_metadata(PROJECT, version, summary="x" * 70_000),
                    core_metadata(PROJECT, version, requires_dist=["a" * 5000]),
                    core_metadata(
                        PROJECT, version, requires_dist=["x; python_version > '" + "9" * 5000 + "'"]
                    ),
                ]
            ),
            label="metadata",
        )
        note = f"metadata {fz.encode(metadata)[:120]}"
    else:
        member = draw(
            st.sampled_from(
                [
                    "../escape.py",
                    "/absolute.py",
                    "a/../../b.py",
                    "C:\\win.py",
                    "x" * 300 + ".py",
                    "é/ü.py",
                    "fuzzpkg/\u202etxt.py",
                    f"{PROJECT}-{version}.dist-info/METADATA",
                ]
            ),
            label="member",
        )
        files[member] = draw(st.sampled_from([b"", b"x", b"\x00" * 10_000]), label="bytes")
        note = f"member {member!r}"
    d = tmp / secrets.token_hex(4)
    d.mkdir(parents=True)
    if wheel:
        path = make_wheel(
            d, PROJECT, version, metadata=metadata, files=files, tag=tag or "py3-none-any"
        )
    else:
        path = make_sdist(d, PROJECT, version, metadata=metadata, files=files)
    return Hostile(Dist.of(path), version, note)
