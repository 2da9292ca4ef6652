"""Distribution filenames: what is accepted, and every way a hostile or sloppy name is refused."""

from __future__ import annotations

import pytest
from packaging.tags import Tag
from packaging.version import Version

from pallet.core.filenames import parse_dist_filename
from pallet.core.problems import Problem
from pallet.core.rules import IMPORT, PYPI, UploadRules


def rejected(filename: str, rules: UploadRules = PYPI, slug: str = "invalid-filename") -> Problem:
    with pytest.raises(Problem) as excinfo:
        parse_dist_filename(filename, rules)
    assert excinfo.value.status == 400
    assert excinfo.value.slug == slug
    assert excinfo.value.detail
    return excinfo.value


def test_wheel_is_parsed():
    d = parse_dist_filename("acme_widgets-1.0-py3-none-any.whl")
    assert d.filename == "acme_widgets-1.0-py3-none-any.whl"
    assert d.project == "acme-widgets"
    assert d.version == Version("1.0")
    assert d.packagetype == "bdist_wheel"
    assert d.python_version == "py3"
    assert d.tags == frozenset({Tag("py3", "none", "any")})
    assert d.build == ()
    assert d.is_zip


def test_wheel_python_tags_keep_filename_order():
    d = parse_dist_filename("acme-2.0-py2.py3-none-any.whl")
    assert d.python_version == "py2.py3"
    assert d.tags == frozenset({Tag("py2", "none", "any"), Tag("py3", "none", "any")})


def test_wheel_with_build_tag_and_compressed_platforms():
    d = parse_dist_filename(
        "acme-1.0-1local-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    )
    assert d.build == (1, "local")
    assert d.python_version == "cp312"
    assert {t.platform for t in d.tags} == {"manylinux_2_17_x86_64", "manylinux2014_x86_64"}


def test_sdist_is_parsed():
    d = parse_dist_filename("acme_widgets-1.0.post1.tar.gz")
    assert d.project == "acme-widgets"
    assert d.version == Version("1.0.post1")
    assert d.packagetype == "sdist"
    assert d.python_version == "source"
    assert d.tags == frozenset()
    assert d.build == ()
    assert not d.is_zip


def test_local_version_parses_here_policy_is_elsewhere():
    assert parse_dist_filename("acme-1.0+cpu.tar.gz").version.local == "cpu"


@pytest.mark.parametrize(
    "platform",
    [
        "any",
        "win32",
        "win_amd64",
        "win_arm64",
        "win_ia64",
        "manylinux1_x86_64",
        "manylinux1_i686",
        "manylinux2010_x86_64",
        "manylinux2014_aarch64",
        "manylinux2014_ppc64le",
        "manylinux_2_28_x86_64",
        "manylinux_2_17_s390x",
        "musllinux_1_2_aarch64",
        "macosx_10_9_x86_64",
        "macosx_11_0_arm64",
        "macosx_10_9_universal2",
        "macosx_10_6_intel",
        "macosx_10_4_fat32",
        "linux_x86_64",
        "linux_armv7l",
        "ios_13_0_arm64_iphoneos",
        "ios_12_0_x86_64_iphonesimulator",
        "android_21_arm64_v8a",
        "pyodide_2024_0_wasm32",
        "emscripten_3_1_58_wasm32",
    ],
)
def test_known_platform_tags_are_accepted(platform):
    d = parse_dist_filename(f"acme-1.0-cp312-cp312-{platform}.whl")
    assert {t.platform for t in d.tags} == {platform}


@pytest.mark.parametrize(
    "platform",
    [
        "foo",
        "linux",
        "win_foo",
        "manylinux1_aarch64",
        "manylinux2010_s390x",
        "manylinux_x86_64",
        "macosx_10_9_sparc",
        "macosx_x86_64",
        "emscripten_wasm32",
        "any.foo",
    ],
)
def test_unknown_platform_tags_are_rejected(platform):
    problem = rejected(f"acme-1.0-py3-none-{platform}.whl")
    assert "platform" in problem.detail


def test_platform_tag_with_path_is_rejected():
    rejected("acme-1.0-py3-none-../x.whl")


@pytest.mark.parametrize(
    "filename",
    [
        "",
        "a" * 250 + "-1.0.tar.gz",
        "acme\x00-1.0.tar.gz",
        "acme\n-1.0.tar.gz",
        "acme-1.0.tar.gz\r",
        "acme\x7f-1.0.tar.gz",
        "acm\u00e9-1.0.tar.gz",
        "acme widgets-1.0.tar.gz",
        "../acme-1.0.tar.gz",
        "..\\acme-1.0.tar.gz",
        "dir/acme-1.0.tar.gz",
        "/acme-1.0.tar.gz",
        "..",
        ".acme-1.0.tar.gz",
        ".tar.gz",
    ],
)
def test_hostile_filenames_are_rejected(filename):
    rejected(filename)


@pytest.mark.parametrize(
    "filename",
    [
        "acme-1.0.zip",
        "acme-1.0.tar.bz2",
        "acme-1.0.tgz",
        "acme-1.0.tar",
        "acme-1.0-py3.11.egg",
        "acme-1.0.win-amd64.exe",
        "acme-1.0.msi",
        "acme-1.0-py3-none-any.WHL",
        "acme-1.0.TAR.GZ",
    ],
)
def test_other_formats_are_rejected_naming_the_accepted_ones(filename):
    detail = rejected(filename).detail
    assert ".whl" in detail and ".tar.gz" in detail
    assert ".zip" in detail


@pytest.mark.parametrize(
    "filename",
    [
        "acme-1.0.whl",
        "acme-1.0-py3-none.whl",
        "acme-1.0-x-y-py3-none-any.whl",
        "acme-1.0-abc-py3-none-any.whl",  # build tag must start with a digit
        "acme__x-1.0-py3-none-any.whl",
        "-1.0-py3-none-any.whl",
    ],
)
def test_malformed_wheel_names_are_rejected(filename):
    rejected(filename)


@pytest.mark.parametrize(
    "filename",
    ["acme.tar.gz", "-1.0.tar.gz", "acme-1.0-2.0.tar.gz"],
)
def test_malformed_sdist_names_are_rejected(filename):
    rejected(filename)


@pytest.mark.parametrize(
    "filename",
    [
        "Acme-1.0-py3-none-any.whl",
        "acme.widgets-1.0-py3-none-any.whl",
        "Acme_Widgets-1.0.tar.gz",
        "acme-widgets-1.0.tar.gz",
        "acme.widgets-1.0.tar.gz",
    ],
)
def test_name_part_must_be_normalised_with_underscores(filename):
    detail = rejected(filename).detail
    assert "acme" in detail.lower() and "import rules" in detail
    assert parse_dist_filename(filename, IMPORT).project in ("acme", "acme-widgets")


@pytest.mark.parametrize(
    ("filename", "project", "version"),
    [
        ("Django-5.0rc1-py3-none-any.whl", "django", "5.0rc1"),
        ("jaraco.classes-3.4.0-py3-none-any.whl", "jaraco-classes", "3.4.0"),
        ("Flask-0.1.tar.gz", "flask", "0.1"),
        ("zope.interface-3.6.1.tar.gz", "zope-interface", "3.6.1"),
        ("setuptools-0.6c11.tar.gz", "setuptools", "0.6rc11"),
        ("argparse-1.1.zip", "argparse", "1.1"),
    ],
)
def test_import_rules_take_what_older_tools_named(filename, project, version):
    rejected(filename, PYPI)
    d = parse_dist_filename(filename, IMPORT)
    assert (d.project, d.version) == (project, Version(version))
    assert d.is_zip == filename.endswith((".whl", ".zip"))


def test_pep_625_version_spelling():
    assert parse_dist_filename("acme-1.0rc1.tar.gz").version == Version("1.0rc1")
    assert "'1.0rc1'" in rejected("acme-1.0c1.tar.gz").detail
    assert parse_dist_filename("acme-1!2.0.tar.gz").version == Version("1!2.0")  # epochs


@pytest.mark.parametrize("filename", ["pytz-2010h.tar.gz", "acme-notaversion-py3-none-any.whl"])
@pytest.mark.parametrize("rules", [PYPI, IMPORT], ids=["pypi", "import"])
def test_non_pep_440_versions_say_why(filename, rules):
    detail = rejected(filename, rules, "invalid-version").detail
    assert "PEP 440" in detail and "pip" in detail


def test_length_limit_is_255():
    name = "a" * (255 - len("-1.0.tar.gz"))
    assert parse_dist_filename(f"{name}-1.0.tar.gz").project == name
    rejected(f"{name}a-1.0.tar.gz")
