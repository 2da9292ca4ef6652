"""The files ``pallet publish`` is pointed at: expanded, read from their own metadata, grouped
into releases and hashed, all before a byte is sent."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pallet.client.dists import CHUNK, DistError, attestations_for, expand, group, inspect
from tests.dists import core_metadata, make_large_wheel, make_sdist, make_wheel


def test_expand_globs_and_plain_paths_without_duplicates(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0")
    sdist = make_sdist(tmp_path, "acme", "1.0")
    paths = expand([str(tmp_path / "*"), str(wheel), str(tmp_path / "." / wheel.name)])
    assert paths == sorted([wheel, sdist])


def test_expand_skips_signatures_and_attestations(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0")
    for suffix in (".asc", ".attestation", ".publish.attestation", ".sig"):
        Path(f"{wheel}{suffix}").write_text("{}")
    assert expand([str(tmp_path / "*")]) == [wheel]


def test_expand_only_signatures_is_nothing_to_publish(tmp_path):
    (tmp_path / "acme-1.0.tar.gz.asc").write_text("sig")
    with pytest.raises(DistError, match="no distributions"):
        expand([str(tmp_path / "*")])


def test_expand_refuses_a_directory_and_suggests_a_glob(tmp_path):
    with pytest.raises(DistError) as exc:
        expand([str(tmp_path)])
    assert "is a directory" in str(exc.value) and f"{tmp_path}/*" in str(exc.value)


def test_expand_refuses_missing_files_and_empty_globs(tmp_path):
    with pytest.raises(DistError, match="no such file") as exc:
        expand([str(tmp_path / "gone-1.0.tar.gz")])
    assert "gone-1.0.tar.gz" in str(exc.value)
    with pytest.raises(DistError, match="no file matches"):
        expand([str(tmp_path / "*.whl")])


def test_inspect_reads_name_and_version_from_the_file(tmp_path):
    """The display name is the metadata's spelling; the filename only gives the normalised one."""
    path = make_wheel(tmp_path, "Acme.Widgets", "2.0rc1", requires_dist=["httpx>=0.27"])
    d = inspect(path)
    assert (d.name, d.version, d.key) == ("Acme.Widgets", "2.0rc1", ("acme-widgets", "2rc1"))
    assert d.size == path.stat().st_size == os.path.getsize(path)
    assert d.metadata["requires_dist"] == ["httpx>=0.27"]
    assert d.dist.packagetype == "bdist_wheel"
    s = inspect(make_sdist(tmp_path, "Acme.Widgets", "2.0rc1"))
    assert (s.name, s.dist.packagetype, s.key) == ("Acme.Widgets", "sdist", d.key)


def test_inspect_refuses_metadata_naming_another_project(tmp_path):
    path = make_wheel(tmp_path, "acme", "1.0", metadata=core_metadata("other", "1.0"))
    with pytest.raises(DistError, match="names project 'other'") as exc:
        inspect(path)
    assert str(exc.value).startswith(path.name)


def test_inspect_refuses_metadata_with_another_version(tmp_path):
    path = make_wheel(tmp_path, "acme", "1.0", metadata=core_metadata("acme", "1.1"))
    with pytest.raises(DistError, match="version '1.1'"):
        inspect(path)


def test_inspect_accepts_an_equal_but_differently_spelt_version(tmp_path):
    """PEP 440 equality, not string equality: ``1.0`` in METADATA keeps ``1.0.0``'s promise."""
    path = make_wheel(tmp_path, "acme", "1.0.0", metadata=core_metadata("acme", "1.0"))
    assert inspect(path).version == "1.0"


def test_inspect_refuses_a_whl_that_is_not_a_zip(tmp_path):
    path = tmp_path / "acme-1.0-py3-none-any.whl"
    path.write_bytes(b"not a zip at all\n" * 10)
    with pytest.raises(DistError) as exc:
        inspect(path)
    assert str(exc.value).startswith(path.name + ": ") and "zip" in str(exc.value)


def test_inspect_refuses_a_bad_filename(tmp_path):
    path = tmp_path / "acme-1.0.egg"
    path.write_bytes(b"PK")
    with pytest.raises(DistError, match=r"acme-1\.0\.egg: .*not a wheel"):
        inspect(path)


def test_group_one_release_per_normalised_name_and_version_wheels_first(tmp_path):
    dists = [
        inspect(make_sdist(tmp_path, "Acme", "1.0")),
        inspect(make_wheel(tmp_path, "acme", "1.0", tag="py3-none-win_amd64")),
        inspect(make_wheel(tmp_path, "ACME", "1.0", tag="py3-none-any")),
        inspect(make_wheel(tmp_path, "acme", "2.0")),
        inspect(make_wheel(tmp_path, "other", "1.0")),
    ]
    groups = group(dists)
    assert list(groups) == [("acme", "1"), ("acme", "2"), ("other", "1")]
    assert [d.filename for d in groups[("acme", "1")]] == [
        "acme-1.0-py3-none-any.whl",
        "acme-1.0-py3-none-win_amd64.whl",
        "acme-1.0.tar.gz",
    ]


def test_attestations_for_finds_only_this_dists_attestations(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0")
    mine = [Path(f"{wheel}.attestation"), Path(f"{wheel}.publish.attestation")]
    for p in [*mine, tmp_path / "acme-1.0.tar.gz.publish.attestation", Path(f"{wheel}.asc")]:
        p.write_text("{}")
    assert attestations_for(wheel) == sorted(mine)
    assert inspect(wheel).attestations == sorted(mine)


def test_attestations_for_escapes_glob_characters_in_the_directory(tmp_path):
    wheel = make_wheel(tmp_path / "[build]", "acme", "1.0")
    Path(f"{wheel}.publish.attestation").write_text("{}")
    assert attestations_for(wheel) == [Path(f"{wheel}.publish.attestation")]


@pytest.mark.parametrize("size", [0, 3 * CHUNK + 17])
def test_hash_file_matches_hashlib_over_the_file_bytes(tmp_path, size):
    """Several chunks, so a digest that forgot one ``update`` would differ."""
    path = (
        make_large_wheel(tmp_path, "acme", "1.0", size)
        if size
        else make_wheel(tmp_path, "acme", "1.0")
    )
    data = path.read_bytes()
    d = inspect(path)
    hashes = d.hash_file()
    assert hashes == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "blake2b": hashlib.blake2b(data).hexdigest(),
        "blake2_256": hashlib.blake2b(data, digest_size=32).hexdigest(),
    }
    assert d.hashes is hashes
    assert d.hash_file(["sha256"]) == hashes  # a subset recomputes, and keeps the rest
    assert len(hashes["blake2b"]) == 128 and len(hashes["blake2_256"]) == 64


def test_versions_equal_after_normalisation_are_one_release(tmp_path: Path) -> None:
    """The index sees 1.0 and 1.0.0 as one release: so must the grouping, or two sessions
    would compete for it."""
    dists = [
        inspect(make_wheel(tmp_path, "acme", "1.0")),
        inspect(make_sdist(tmp_path, "acme", "1.0.0")),
    ]
    (files,) = group(dists).values()
    assert [d.filename for d in files] == ["acme-1.0-py3-none-any.whl", "acme-1.0.0.tar.gz"]
