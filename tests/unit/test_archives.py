"""Archive inspection: real wheels and sdists pass; every hostile shape is refused with its slug.

Hostile archives are built here, byte by byte where the standard library's writers refuse to
produce them (NUL names, lying sizes, overlapping entries)."""

from __future__ import annotations

import gzip
import io
import random
import struct
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from pallet.core.archives import ArchiveLimits, read_dist_metadata
from pallet.core.filenames import parse_dist_filename
from pallet.core.problems import Problem
from pallet.core.rules import IMPORT
from tests.dists import core_metadata, make_sdist, make_wheel

MiB = 2**20
STEM = "acme-1.0"
#: The bomb arithmetic with a 1 MiB floor, so the hostile cases stay small and fast; the default
#: floor (64 MiB, as PyPI's) is exercised separately.
SMALL = ArchiveLimits(ratio_floor=MiB)


def rng(seed: object) -> random.Random:
    return random.Random(seed)  # noqa: S311 - reproducible test data, not secrets


def read(path: Path, limits: ArchiveLimits = ArchiveLimits()) -> bytes:
    return read_dist_metadata(path, parse_dist_filename(path.name), limits)


def refused(path: Path, slug: str, limits: ArchiveLimits = ArchiveLimits()) -> Problem:
    with pytest.raises(Problem) as excinfo:
        read(path, limits)
    assert excinfo.value.status == 400
    assert excinfo.value.slug == slug, excinfo.value.detail
    assert excinfo.value.detail
    return excinfo.value


# -- builders -----------------------------------------------------------------------------------


def rezip(src: Path, *, drop=(), add=None, rename=None, compression=zipfile.ZIP_DEFLATED) -> Path:
    """Rewrite a wheel in place with members dropped, added or renamed."""
    with zipfile.ZipFile(src) as zf:
        members = [(i.filename, zf.read(i)) for i in zf.infolist() if i.filename not in drop]
    members = [((rename or {}).get(n, n), d) for n, d in members] + list((add or {}).items())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of some tests
        with zipfile.ZipFile(src, "w", compression) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return src


def central_entries(data: bytes) -> dict[str, int]:
    """Offsets of each central directory record, by member name."""
    (count, _, start) = struct.unpack_from("<HLL", data, data.rfind(b"PK\x05\x06") + 10)
    offsets, pos = {}, start
    for _ in range(count):
        n, m, k = struct.unpack_from("<HHH", data, pos + 28)
        offsets[data[pos + 46 : pos + 46 + n].decode()] = pos
        pos += 46 + n + m + k
    return offsets


def patch_central(path: Path, member: str, field_offset: int, fmt: str, value: int) -> None:
    """Change one field of a member's central directory record (flags +8, method +10, CRC +16,
    compressed size +20, size +24, local header offset +42)."""
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, central_entries(bytes(data))[member] + field_offset, value)
    path.write_bytes(bytes(data))


def write_sdist(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    """A .tar.gz from (name, data) files and ready-made TarInfo headers (links, devices...)."""
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tf:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tf.addfile(entry)
            else:
                ti = tarfile.TarInfo(entry[0])
                ti.size = len(entry[1])
                tf.addfile(ti, io.BytesIO(entry[1]))
    return path


def pkg_info() -> tuple[str, bytes]:
    return (f"{STEM}/PKG-INFO", core_metadata("acme", "1.0").encode())


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname = kind, target
    return ti


def special(name: str, kind: bytes) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    return ti


# -- wheels: happy paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED, zipfile.ZIP_BZIP2]
)
def test_wheel_metadata_is_returned(tmp_path, compression):
    wheel = make_wheel(tmp_path, "Acme.Widgets", "1.0", compression=compression)
    assert wheel.name == "acme_widgets-1.0-py3-none-any.whl"
    assert read(wheel) == core_metadata("Acme.Widgets", "1.0").encode()


def test_dist_info_name_is_compared_normalised(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0")
    info = "acme-1.0.dist-info"
    rezip(
        wheel,
        rename={
            f"{info}/{f}": f"Acme-1.0.0.dist-info/{f}" for f in ("METADATA", "WHEEL", "RECORD")
        },
    )
    assert b"Name: acme" in read(wheel)


def test_wheel_from_a_reader_reads_only_the_directory_and_metadata(tmp_path):
    big = rng(1).randbytes(24 * MiB)  # incompressible: stored as is
    wheel = make_wheel(
        tmp_path, "acme", "1.0", files={"acme/blob.bin": big}, compression=zipfile.ZIP_STORED
    )

    class Counting(io.BytesIO):
        consumed = 0

        def read(self, n: int | None = -1) -> bytes:
            data = super().read(n)
            Counting.consumed += len(data)
            return data

    source = Counting(wheel.read_bytes())
    dist = parse_dist_filename(wheel.name)
    assert b"Name: acme" in read_dist_metadata(source, dist, size=wheel.stat().st_size)
    assert Counting.consumed < 200_000


# -- wheels: hostile ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "member",
    [
        "../../evil.py",
        "acme/../../evil.py",
        "/etc/evil",
        "C:/evil.py",
        "c:evil.py",
        "acme\\..\\evil.py",
        "acme/\nevil.py",
        "acme/\x7fevil.py",
    ],
)
def test_unsafe_member_names_in_wheels(tmp_path, member):
    wheel = make_wheel(tmp_path, "acme", "1.0", files={member: b"boom"})
    refused(wheel, "unsafe-archive")


def test_nul_in_a_wheel_member_name(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0", files={"acme/aXb.py": b"boom"})
    wheel.write_bytes(wheel.read_bytes().replace(b"acme/aXb.py", b"acme/a\0b.py"))
    refused(wheel, "unsafe-archive")


def test_duplicate_member_names(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0")
    rezip(wheel, add={"acme/__init__.py": b"evil = True\n"})
    assert "twice" in refused(wheel, "invalid-archive").detail


def test_overlapping_entries(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0", files={"acme/b.py": b"b = 2\n" * 100})
    entries = central_entries(wheel.read_bytes())
    first = struct.unpack_from("<L", wheel.read_bytes(), entries["acme/__init__.py"] + 42)[0]
    patch_central(wheel, "acme/b.py", 42, "<L", first)
    assert "overlap" in refused(wheel, "zip-bomb").detail


def test_deflated_zeros_are_a_bomb(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0")
    with zipfile.ZipFile(wheel, "a", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("acme/zeros.bin", "w", force_zip64=True) as out:
            chunk = bytes(MiB)
            for _ in range(32):
                out.write(chunk)
    assert wheel.stat().st_size < MiB
    refused(wheel, "zip-bomb", SMALL)
    read(wheel)  # 32 MiB of anything is no bomb under the default 64 MiB floor


def test_whole_archive_ratio_counts_small_members_together(tmp_path):
    files = {f"acme/z{i}.txt": bytes(512 * 1024) for i in range(4)}  # each under 1 MiB
    refused(make_wheel(tmp_path, "acme", "1.0", files=files), "zip-bomb", SMALL)


def test_a_small_member_may_compress_hundreds_of_times(tmp_path):
    # pillow's bundled libXau expands 224 times: harmless at a few MiB.
    wheel = make_wheel(tmp_path, "acme", "1.0", files={"acme.libs/libXau.so": bytes(8 * MiB)})
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo("acme.libs/libXau.so")
    assert info.file_size > 224 * info.compress_size
    assert b"Name: acme" in read(wheel)


def test_one_member_past_the_floor_at_an_absurd_ratio_is_a_bomb(tmp_path):
    # 96 MiB from ~100 KiB hidden among incompressible data, so the whole archive's ratio
    # (about 1.5) would let it through: the per-member rule is what catches it.
    filler = {f"acme/r{i}.bin": rng(i).randbytes(16 * MiB) for i in range(4)}
    wheel = make_wheel(tmp_path, "acme", "1.0", files=filler)
    with zipfile.ZipFile(wheel, "a", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("acme/zeros.bin", "w", force_zip64=True) as out:
            for _ in range(96):
                out.write(bytes(MiB))
    assert "acme/zeros.bin" in refused(wheel, "zip-bomb").detail


def test_declared_sizes_over_the_limit(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0", files={"acme/data.bin": b"x" * 4096})
    refused(wheel, "zip-bomb", ArchiveLimits(max_uncompressed_size=2048))


def test_central_directory_lying_about_a_members_size(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0", files={"acme/data.py": b"x = 1\n"})
    patch_central(wheel, "acme/data.py", 24, "<L", 0xFFFFFFF0)
    refused(wheel, "zip-bomb")


@pytest.mark.parametrize("delta", [-10, 10])
def test_metadata_size_lie_is_caught(tmp_path, delta):
    wheel = make_wheel(tmp_path, "acme", "1.0")
    name = "acme-1.0.dist-info/METADATA"
    with zipfile.ZipFile(wheel) as zf:
        size = zf.getinfo(name).file_size
    patch_central(wheel, name, 24, "<L", size + delta)
    refused(wheel, "zip-bomb")


def test_metadata_local_header_naming_another_file(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0")
    with zipfile.ZipFile(wheel) as zf:
        local = zf.getinfo("acme-1.0.dist-info/METADATA").header_offset
    data = bytearray(wheel.read_bytes())
    assert data[local + 30 : local + 34] == b"acme"
    data[local + 30 : local + 34] = b"ACME"
    wheel.write_bytes(bytes(data))
    refused(wheel, "zip-bomb")


def test_metadata_crc_mismatch(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0")
    patch_central(wheel, "acme-1.0.dist-info/METADATA", 16, "<L", 12345)
    refused(wheel, "invalid-archive")


def test_encrypted_metadata(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0")
    patch_central(wheel, "acme-1.0.dist-info/METADATA", 8, "<H", 0x1)
    refused(wheel, "invalid-archive")


def test_too_many_members(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0", files={f"acme/m{i}.py": b"" for i in range(10)})
    refused(wheel, "zip-bomb", ArchiveLimits(max_members=5))


def test_truncated_wheel(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0")
    data = wheel.read_bytes()
    wheel.write_bytes(data[: len(data) // 2])
    refused(wheel, "invalid-archive")


@pytest.mark.parametrize("content", [b"", b"MZ\x90\x00 not a zip" * 100, b"PK\x05\x06" + bytes(10)])
def test_not_a_zip(tmp_path, content):
    fake = tmp_path / "acme-1.0-py3-none-any.whl"
    fake.write_bytes(content)
    refused(fake, "invalid-archive")


@pytest.mark.parametrize("missing", ["METADATA", "WHEEL", "RECORD"])
def test_required_dist_info_files(tmp_path, missing):
    wheel = rezip(make_wheel(tmp_path, "acme", "1.0"), drop={f"acme-1.0.dist-info/{missing}"})
    assert missing in refused(wheel, "invalid-wheel").detail


@pytest.mark.parametrize(
    "add",
    [
        {"other-1.0.dist-info/METADATA": b""},  # a second .dist-info
        {"acme-2.0.dist-info/METADATA": b""},
    ],
)
def test_exactly_one_dist_info(tmp_path, add):
    refused(rezip(make_wheel(tmp_path, "acme", "1.0"), add=add), "invalid-wheel")


@pytest.mark.parametrize("prefix", ["other-1.0", "acme-2.0", "acme-notaversion", "acme"])
def test_dist_info_must_match_the_filename(tmp_path, prefix):
    wheel = make_wheel(tmp_path, "acme", "1.0")
    files = ("METADATA", "WHEEL", "RECORD")
    rezip(wheel, rename={f"acme-1.0.dist-info/{f}": f"{prefix}.dist-info/{f}" for f in files})
    refused(wheel, "invalid-wheel")


def test_no_dist_info(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0")
    rezip(wheel, drop={f"acme-1.0.dist-info/{f}" for f in ("METADATA", "WHEEL", "RECORD")})
    refused(wheel, "invalid-wheel")


def test_metadata_over_the_size_limit(tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0")
    refused(wheel, "invalid-metadata", ArchiveLimits(max_metadata_size=64))


# -- sdists: happy paths ------------------------------------------------------------------------


def test_sdist_pkg_info_is_returned(tmp_path):
    sdist = make_sdist(tmp_path, "Acme.Widgets", "1.0")
    assert sdist.name == "acme_widgets-1.0.tar.gz"
    assert read(sdist) == core_metadata("Acme.Widgets", "1.0").encode()


def test_sdist_from_a_reader(tmp_path):
    sdist = make_sdist(tmp_path, "acme", "1.0")
    dist = parse_dist_filename(sdist.name)
    raw = read_dist_metadata(io.BytesIO(sdist.read_bytes()), dist, size=sdist.stat().st_size)
    assert b"Name: acme" in raw


def test_sdist_with_links_inside_its_tree(tmp_path):
    sdist = write_sdist(
        tmp_path / f"{STEM}.tar.gz",
        [
            special(STEM, tarfile.DIRTYPE),
            pkg_info(),
            (f"{STEM}/README.md", b"hi"),
            link(f"{STEM}/docs/README.md", "../README.md"),
            link(f"{STEM}/docs/self", "."),
            link(f"{STEM}/copy.md", f"{STEM}/README.md", tarfile.LNKTYPE),
            link(f"./{STEM}/again.md", f"./{STEM}/README.md", tarfile.LNKTYPE),
        ],
    )
    assert b"Name: acme" in read(sdist)


def test_sdist_with_large_random_member(tmp_path):
    data = rng(2).randbytes(2 * MiB)
    assert b"Name: acme" in read(make_sdist(tmp_path, "acme", "1.0", files={"blob": data}))


# -- sdists: hostile ----------------------------------------------------------------------------


def test_path_traversal_member_in_sdist(tmp_path):
    refused(make_sdist(tmp_path, "acme", "1.0", files={"../../etc/evil": b"x"}), "unsafe-archive")


@pytest.mark.parametrize("name", ["/etc/evil", "C:/evil", f"{STEM}/a\\b", f"{STEM}/a\x01b"])
def test_unsafe_member_names_in_sdists(tmp_path, name):
    sdist = write_sdist(tmp_path / f"{STEM}.tar.gz", [pkg_info(), (name, b"x")])
    refused(sdist, "unsafe-archive")


@pytest.mark.parametrize(
    "target",
    ["../../etc/passwd", "/etc/passwd", "..", "../other-1.0/x", "C:/Windows", "a/" * 2100],
)
def test_symlink_escaping_the_sdist(tmp_path, target):
    sdist = write_sdist(tmp_path / f"{STEM}.tar.gz", [pkg_info(), link(f"{STEM}/evil", target)])
    refused(sdist, "unsafe-archive")


def test_symlink_chain_escaping_the_sdist(tmp_path):
    # Each link looks harmless on its own; followed through "here", "up" lands above the tree.
    entries = [pkg_info(), link(f"{STEM}/here", "."), link(f"{STEM}/up", "here/..")]
    refused(write_sdist(tmp_path / f"{STEM}.tar.gz", entries), "unsafe-archive")


def test_symlink_loop(tmp_path):
    entries = [pkg_info(), link(f"{STEM}/a", "b"), link(f"{STEM}/b", "a")]
    refused(write_sdist(tmp_path / f"{STEM}.tar.gz", entries), "unsafe-archive")


def test_member_stored_through_a_symlinked_directory(tmp_path):
    entries = [pkg_info(), link(f"{STEM}/d", "sub"), (f"{STEM}/d/file.py", b"x")]
    refused(write_sdist(tmp_path / f"{STEM}.tar.gz", entries), "unsafe-archive")


@pytest.mark.parametrize("target", ["etc/passwd", "../x", "/etc/passwd", "other-1.0/x"])
def test_hardlink_escaping_the_sdist(tmp_path, target):
    entries = [pkg_info(), link(f"{STEM}/evil", target, tarfile.LNKTYPE)]
    refused(write_sdist(tmp_path / f"{STEM}.tar.gz", entries), "unsafe-archive")


@pytest.mark.parametrize(
    "kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.GNUTYPE_SPARSE, b"Z"]
)
def test_special_members(tmp_path, kind):
    sdist = write_sdist(tmp_path / f"{STEM}.tar.gz", [pkg_info(), special(f"{STEM}/dev", kind)])
    refused(sdist, "unsafe-archive")


@pytest.mark.parametrize("top", ["ruamel.yaml-0.19.1", "acme-2.0", "Acme-1.0.0"])
def test_any_one_top_directory_holding_pkg_info(tmp_path, top):
    # PyPI asks for one top directory with PKG-INFO, whatever its name (ruamel_yaml-0.19.1.tar.gz
    # unpacks to ruamel.yaml-0.19.1/).
    assert b"Name: acme" in read(make_sdist(tmp_path, "acme", "1.0", top=top))


def test_members_without_a_top_directory(tmp_path):
    refused(make_sdist(tmp_path, "acme", "1.0", top=""), "invalid-sdist")


def test_member_outside_the_top_directory(tmp_path):
    sdist = write_sdist(tmp_path / f"{STEM}.tar.gz", [pkg_info(), ("setup.py", b"x")])
    refused(sdist, "invalid-sdist")


def test_top_directory_must_be_a_directory(tmp_path):
    sdist = write_sdist(tmp_path / f"{STEM}.tar.gz", [(STEM, b"x"), pkg_info()])
    refused(sdist, "invalid-sdist")


@pytest.mark.parametrize("where", [None, f"{STEM}/sub/PKG-INFO"])
def test_missing_pkg_info(tmp_path, where):
    entries = [(f"{STEM}/setup.py", b"x")] + ([(where, b"Name: x")] if where else [])
    refused(write_sdist(tmp_path / f"{STEM}.tar.gz", entries), "invalid-sdist")


def test_pkg_info_twice(tmp_path):
    sdist = write_sdist(tmp_path / f"{STEM}.tar.gz", [pkg_info(), pkg_info()])
    refused(sdist, "invalid-sdist")


def test_pkg_info_over_the_size_limit(tmp_path):
    refused(
        make_sdist(tmp_path, "acme", "1.0"), "invalid-metadata", ArchiveLimits(max_metadata_size=64)
    )


def test_sdist_bomb(tmp_path):
    sdist = make_sdist(tmp_path, "acme", "1.0", files={"zeros": bytes(32 * MiB)})
    assert sdist.stat().st_size < MiB
    refused(sdist, "zip-bomb", SMALL)


def test_sdist_header_lying_about_a_huge_member(tmp_path):
    ti = tarfile.TarInfo(f"{STEM}/huge")
    ti.size = 100 * 2**30
    header = tarfile.TarInfo(pkg_info()[0])
    header.size = len(pkg_info()[1])
    body = header.tobuf(tarfile.GNU_FORMAT) + pkg_info()[1].ljust(512, b"\0")
    sdist = tmp_path / f"{STEM}.tar.gz"
    sdist.write_bytes(gzip.compress(body + ti.tobuf(tarfile.GNU_FORMAT) + bytes(4096)))
    refused(sdist, "zip-bomb")


def test_oversized_pax_header(tmp_path):
    ti = tarfile.TarInfo("././@PaxHeader")
    ti.type, ti.size = tarfile.XHDTYPE, 512 * MiB
    sdist = tmp_path / f"{STEM}.tar.gz"
    sdist.write_bytes(gzip.compress(ti.tobuf(tarfile.USTAR_FORMAT) + bytes(8192)))
    refused(sdist, "zip-bomb")


def test_sdist_sizes_over_the_limit(tmp_path):
    sdist = make_sdist(tmp_path, "acme", "1.0", files={"data": b"x" * 4096})
    refused(sdist, "zip-bomb", ArchiveLimits(max_uncompressed_size=2048))


def test_too_many_sdist_members(tmp_path):
    sdist = make_sdist(tmp_path, "acme", "1.0", files={f"m{i}": b"" for i in range(10)})
    refused(sdist, "zip-bomb", ArchiveLimits(max_members=5))


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not gzip at all" * 10,
        gzip.compress(b"not a tar file" * 100, mtime=0),
        gzip.compress(b"", mtime=0),
    ],
    ids=["empty", "not-gzip", "gzip-not-tar", "empty-gzip"],
)
def test_not_a_tar_gz(tmp_path, content):
    fake = tmp_path / f"{STEM}.tar.gz"
    fake.write_bytes(content)
    refused(fake, "invalid-archive")


def test_bzip2_tar_named_tar_gz(tmp_path):
    fake = tmp_path / f"{STEM}.tar.gz"
    with tarfile.open(fake, "w:bz2") as tf:
        ti = tarfile.TarInfo(pkg_info()[0])
        ti.size = len(pkg_info()[1])
        tf.addfile(ti, io.BytesIO(pkg_info()[1]))
    refused(fake, "invalid-archive")


def test_truncated_sdist(tmp_path):
    sdist = make_sdist(tmp_path, "acme", "1.0", files={"blob": rng(3).randbytes(64 * 1024)})
    data = sdist.read_bytes()
    sdist.write_bytes(data[: len(data) // 2])
    refused(sdist, "invalid-archive")


# -- nothing leaks ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_damaged_archives_only_ever_raise_problems(tmp_path, kind):
    maker = make_wheel if kind == "wheel" else make_sdist
    good = maker(tmp_path, "acme", "1.0", files={"acme/x.py": b"x = 1\n" * 50})
    original = good.read_bytes()
    noise = rng(kind)
    for i in range(300):
        data = bytearray(original)
        if i % 3 == 0:
            data = data[: noise.randrange(len(data))]
        else:
            for _ in range(noise.randint(1, 8)):
                data[noise.randrange(len(data))] = noise.randrange(256)
        good.write_bytes(bytes(data))
        try:
            read(good)
        except Problem as problem:
            assert problem.status == 400


# -- .zip sdists (import rules) -----------------------------------------------------------------


def zip_sdist(path: Path, entries: list[tuple[str, bytes]], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "../../etc/passwd")
    return path


def test_zip_sdist_reads_pkg_info(tmp_path):
    entries = [("argparse-1.1/PKG-INFO", b"Metadata-Version: 1.0\nName: argparse\nVersion: 1.1\n")]
    entries.append(("argparse-1.1/setup.py", b"from distutils.core import setup\n"))
    sdist = zip_sdist(tmp_path / "argparse-1.1.zip", entries)
    dist = parse_dist_filename(sdist.name, IMPORT)
    assert read_dist_metadata(sdist, dist).startswith(b"Metadata-Version: 1.0")


@pytest.mark.parametrize(
    ("entries", "symlink", "slug"),
    [
        ([("PKG-INFO", b"x"), ("setup.py", b"x")], None, "invalid-sdist"),
        ([("a-1.1/PKG-INFO", b"x"), ("b-1.1/setup.py", b"x")], None, "invalid-sdist"),
        ([("a-1.1/setup.py", b"x")], None, "invalid-sdist"),
        ([("a-1.1/PKG-INFO", b"x"), ("a-1.1/../../evil", b"x")], None, "unsafe-archive"),
        ([("a-1.1/PKG-INFO", b"x")], "a-1.1/evil", "unsafe-archive"),
    ],
    ids=["no-top", "two-tops", "no-pkg-info", "traversal", "symlink"],
)
def test_hostile_zip_sdists(tmp_path, entries, symlink, slug):
    sdist = zip_sdist(tmp_path / "a-1.1.zip", entries, symlink)
    with pytest.raises(Problem) as excinfo:
        read_dist_metadata(sdist, parse_dist_filename(sdist.name, IMPORT))
    assert excinfo.value.slug == slug, excinfo.value.detail


# -- PEP 639 license files ----------------------------------------------------------------------


@pytest.mark.parametrize("present", [True, False])
def test_license_files_must_be_in_the_wheel(tmp_path, present):
    from pallet.core.archives import read_dist_contents
    from pallet.core.metadata import check_license_files, parse_core_metadata

    metadata = core_metadata("acme", "1.0", extra_headers="License-File: LICENSE\n")
    files = {"acme-1.0.dist-info/licenses/LICENSE": b"MIT"} if present else {}
    wheel = make_wheel(tmp_path, "acme", "1.0", metadata=metadata, files=files)
    contents = read_dist_contents(wheel, parse_dist_filename(wheel.name))
    meta = parse_core_metadata(contents.metadata)
    if present:
        check_license_files(meta, contents)
    else:
        with pytest.raises(Problem, match="LICENSE"):
            check_license_files(meta, contents)
