"""Core metadata parsing, file/form agreement, the legacy upload form and the JSON API info."""

from __future__ import annotations

import json

import pytest

from pallet.core.filenames import parse_dist_filename
from pallet.core.metadata import (
    UploadForm,
    check_file_matches,
    check_form_matches,
    parse_core_metadata,
    parse_upload_form,
    project_info,
)
from pallet.core.problems import Problem
from pallet.core.rules import IMPORT, PYPI
from tests.dists import core_metadata

WHEEL = parse_dist_filename("acme_widgets-1.0-py3-none-any.whl")
SDIST = parse_dist_filename("acme_widgets-1.0.tar.gz")
MD5 = "0123456789abcdef0123456789abcdef"
SHA256 = "ab" * 32
BLAKE2 = "cd" * 32


def problem_of(fn, *args, **kwargs) -> Problem:
    with pytest.raises(Problem) as excinfo:
        fn(*args, **kwargs)
    assert excinfo.value.status == 400
    assert excinfo.value.detail
    return excinfo.value


def meta(name: str = "Acme.Widgets", version: str = "1.0", extra: str = ""):
    return parse_core_metadata(core_metadata(name, version, extra_headers=extra).encode())


def form_fields(**overrides: str | list[str] | None) -> dict[str, list[str]]:
    fields: dict[str, str | list[str] | None] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": "Acme.Widgets",
        "version": "1.0",
        "filetype": "bdist_wheel",
        "pyversion": "py3",
        "metadata_version": "2.4",
        "md5_digest": MD5,
        "sha256_digest": SHA256,
        "blake2_256_digest": BLAKE2,
        "summary": "A test package",
    }
    fields.update(overrides)
    return {k: v if isinstance(v, list) else [v] for k, v in fields.items() if v is not None}


# -- parse_core_metadata ------------------------------------------------------------------------


def test_valid_metadata_parses():
    m = meta(extra="Requires-Dist: requests>=2\n")
    assert m.name == "Acme.Widgets"
    assert str(m.version) == "1.0"
    assert [str(r) for r in m.requires_dist] == ["requests>=2"]


@pytest.mark.parametrize(
    ("raw", "source"),
    [
        ("Metadata-Version: 2.4\nName: acme\nVersion: 1.x\n", "version"),
        ("Metadata-Version: 2.4\nName: acme widgets!\nVersion: 1.0\n", "name"),
        ("Metadata-Version: 2.4\nName: acme\nVersion: 1.0\nRequires-Dist: ???\n", "requires-dist"),
        ("Metadata-Version: 2.4\nVersion: 1.0\n", "name"),
        ("Metadata-Version: 9.9\nName: acme\nVersion: 1.0\n", "metadata-version"),
    ],
)
def test_invalid_metadata_names_each_field(raw, source):
    problem = problem_of(parse_core_metadata, raw.encode())
    assert problem.slug == "invalid-metadata"
    assert source in [e.source for e in problem.errors]
    assert all(e.message for e in problem.errors)


def test_every_error_is_reported():
    raw = b"Metadata-Version: 2.4\nName: acme widgets!\nVersion: 1.x\n"
    problem = problem_of(parse_core_metadata, raw)
    assert {e.source for e in problem.errors} == {"name", "version"}


@pytest.mark.parametrize(
    "raw", [b"Metadata-Version: 2.4\nName: acm\xe9\nVersion: 1.0\n", b"\xff\xfe"]
)
def test_undecodable_metadata(raw):
    assert problem_of(parse_core_metadata, raw).slug == "invalid-metadata"


# -- check_file_matches -------------------------------------------------------------------------


def test_matching_file_passes():
    check_file_matches(meta(), WHEEL)
    check_file_matches(meta("acme_widgets", "1.0.0"), SDIST)


def test_name_mismatch_names_both():
    problem = problem_of(check_file_matches, meta("other"), WHEEL)
    assert problem.slug == "name-mismatch"
    assert "other" in problem.detail and "acme-widgets" in problem.detail


def test_version_mismatch():
    problem = problem_of(check_file_matches, meta(version="2.0"), WHEEL)
    assert problem.slug == "version-mismatch"
    assert "2.0" in problem.detail and "1.0" in problem.detail


def test_local_versions_follow_the_setting():
    dist = parse_dist_filename("acme_widgets-1.0+cpu-py3-none-any.whl")
    local = meta(version="1.0+cpu")
    check_file_matches(local, dist, PYPI.with_local_versions(True))
    check_file_matches(local, dist, IMPORT)  # mirrors of +cpu builds
    problem = problem_of(check_file_matches, local, dist, PYPI)
    assert problem.slug == "local-version-not-allowed"


def test_license_and_license_expression_are_exclusive():
    m = meta(extra="License: MIT\nLicense-Expression: MIT\n")
    problem = problem_of(check_file_matches, m, WHEEL)
    assert problem.slug == "invalid-metadata"
    check_file_matches(meta(extra="License-Expression: MIT\n"), WHEEL)


# -- parse_upload_form --------------------------------------------------------------------------


def test_twine_form_parses():
    fields = form_fields()
    form = parse_upload_form(fields)
    assert isinstance(form, UploadForm)
    assert (form.name, form.version, form.filetype) == ("Acme.Widgets", "1.0", "bdist_wheel")
    assert (form.pyversion, form.metadata_version) == ("py3", "2.4")
    assert form.digests == {"md5": MD5, "sha256": SHA256, "blake2_256": BLAKE2}
    assert form.fields["summary"] == ["A test package"]


def test_optional_fields_may_be_absent():
    form = parse_upload_form(
        form_fields(
            protocol_version=None,
            pyversion=None,
            metadata_version=None,
            md5_digest=None,
            blake2_256_digest=None,
            filetype="sdist",
        )
    )
    assert form.pyversion is None and form.metadata_version is None
    assert form.digests == {"sha256": SHA256}


def test_digests_are_lower_cased():
    form = parse_upload_form(form_fields(sha256_digest=SHA256.upper(), md5_digest=MD5.upper()))
    assert form.digests["sha256"] == SHA256 and form.digests["md5"] == MD5


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("md5_digest", MD5[:-1]),
        ("md5_digest", MD5 + "0"),
        ("md5_digest", "g" * 32),
        ("sha256_digest", SHA256[:-2]),
        ("sha256_digest", "z" * 64),
        ("sha256_digest", " " + SHA256[1:]),
        ("blake2_256_digest", BLAKE2 + "00"),
        ("blake2_256_digest", "-" * 64),
    ],
)
def test_malformed_digests(field, value):
    problem = problem_of(parse_upload_form, form_fields(**{field: value}))
    assert problem.slug == "invalid-digest"
    assert problem.errors[0].source == field


@pytest.mark.parametrize(
    "overrides",
    [
        {":action": None},
        {":action": "submit"},
        {":action": "doc_upload"},
        {"protocol_version": "2"},
        {"name": None},
        {"name": ""},
        {"version": None},
        {"filetype": None},
        {"filetype": "bdist_egg"},
        {"filetype": "bdist_wininst"},
        {"name": ["acme", "other"]},
        {"version": ["1.0", "1.0"]},
        {"filetype": ["sdist", "sdist"]},
        {"sha256_digest": [SHA256, SHA256]},
        {":action": ["file_upload", "file_upload"]},
    ],
)
def test_invalid_forms(overrides):
    assert problem_of(parse_upload_form, form_fields(**overrides)).slug == "invalid-form"


def test_field_names_are_case_sensitive():
    fields = form_fields(name=None)
    fields["Name"] = ["acme"]
    assert problem_of(parse_upload_form, fields).slug == "invalid-form"


# -- check_form_matches -------------------------------------------------------------------------


def test_form_matching_the_file_passes():
    check_form_matches(parse_upload_form(form_fields(name="acme-widgets")), meta(), WHEEL)
    check_form_matches(
        parse_upload_form(form_fields(version="1.0.0", filetype="sdist")), meta(), SDIST
    )


@pytest.mark.parametrize(
    ("overrides", "slug"),
    [
        ({"name": "other"}, "name-mismatch"),
        ({"version": "2.0"}, "version-mismatch"),
        ({"version": "not a version"}, "invalid-form"),
        ({"filetype": "sdist"}, "invalid-form"),
    ],
)
def test_form_disagreeing_with_the_file(overrides, slug):
    form = parse_upload_form(form_fields(**overrides))
    assert problem_of(check_form_matches, form, meta(), WHEEL).slug == slug


# -- project_info -------------------------------------------------------------------------------


def test_project_info_is_json_ready():
    extra = (
        "Description-Content-Type: text/markdown\n"
        "Author: Ada\nAuthor-email: ada@example.org\n"
        "Maintainer: Bob\nMaintainer-email: bob@example.org\n"
        "License-Expression: MIT OR Apache-2.0\nLicense-File: LICENSE\n"
        "Keywords: widgets,acme\n"
        "Classifier: Programming Language :: Python :: 3\n"
        "Platform: linux\n"
        "Home-page: https://example.org\nDownload-URL: https://example.org/dl\n"
        "Project-URL: Source, https://example.org/src\n"
        "Requires-Python: >=3.11\nRequires-Dist: requests>=2\nRequires-Dist: rich; extra == 'fancy'\n"
        "Provides-Extra: fancy\n"
    )
    info = project_info(meta(extra=extra))
    assert json.loads(json.dumps(info)) == info
    assert info["name"] == "Acme.Widgets"
    assert info["version"] == "1.0"
    assert info["summary"] == "A test package"
    assert info["description"].strip() == "Long description."
    assert info["description_content_type"] == "text/markdown"
    assert (info["author"], info["author_email"]) == ("Ada", "ada@example.org")
    assert (info["maintainer"], info["maintainer_email"]) == ("Bob", "bob@example.org")
    assert info["license"] is None
    assert info["license_expression"] == "MIT OR Apache-2.0"
    assert info["license_files"] == ["LICENSE"]
    assert info["keywords"] == "widgets,acme"
    assert info["classifiers"] == ["Programming Language :: Python :: 3"]
    assert info["platform"] == "linux"
    assert info["home_page"] == "https://example.org"
    assert info["download_url"] == "https://example.org/dl"
    assert info["project_urls"] == {"Source": "https://example.org/src"}
    assert info["requires_dist"] == ["requests>=2", 'rich; extra == "fancy"']
    assert info["requires_python"] == ">=3.11"
    assert info["provides_extra"] == ["fancy"]


def test_project_info_of_minimal_metadata():
    info = project_info(parse_core_metadata(b"Metadata-Version: 1.0\nName: acme\nVersion: 1.0\n"))
    assert json.loads(json.dumps(info)) == info
    assert info["requires_dist"] is None
    assert info["keywords"] is None
    assert info["classifiers"] == []
    assert info["project_urls"] == {}
    assert info["requires_python"] is None
    assert "yanked" not in info


# -- the two rule sets --------------------------------------------------------------------------


def pkg_info(version: str, *extra: str) -> bytes:
    return "\n".join([f"Metadata-Version: {version}", "Name: acme", "Version: 1.0", *extra, ""]).encode()


def test_setuptools_license_file_under_2_1_is_accepted_and_ignored():
    # boto3, six, colorama ...: setuptools wrote License-File under 2.1; twine drops it and
    # PyPI takes the file.
    m = parse_core_metadata(pkg_info("2.1", "License-File: LICENSE.txt", "License: MIT"), PYPI)
    assert m.license_files is None and m.license == "MIT"


def test_license_file_under_2_4_is_kept():
    m = parse_core_metadata(pkg_info("2.4", "License-File: LICENSE.txt"), PYPI)
    assert m.license_files == ["LICENSE.txt"]


@pytest.mark.parametrize(
    "raw",
    [
        pkg_info("1.0", "Classifier: Programming Language :: Python"),  # docutils 0.4
        pkg_info("2.0", "Requires-Dist: six"),  # old bdist_wheel
        pkg_info("1.0", "Author: Jos\xe9").replace("Jos\xe9".encode(), "Jos\xe9".encode("latin-1")),
    ],
    ids=["classifier-under-1.0", "metadata-2.0", "latin-1"],
)
def test_historical_metadata_needs_the_import_rules(raw):
    assert problem_of(parse_core_metadata, raw, PYPI).slug == "invalid-metadata"
    m = parse_core_metadata(raw, IMPORT)
    assert (m.name, str(m.version)) == ("acme", "1.0")


def test_import_rules_keep_newer_fields_that_are_valid():
    m = parse_core_metadata(pkg_info("1.0", "Classifier: Framework :: Django"), IMPORT)
    assert m.classifiers == ["Framework :: Django"]
    assert "import rules" in problem_of(
        parse_core_metadata, pkg_info("1.0", "Classifier: Framework :: Django"), PYPI
    ).detail


def test_import_rules_drop_invalid_fields_but_never_the_name_or_version():
    m = parse_core_metadata(pkg_info("1.2", "Requires-Python: >=2.4.*x", "Summary: ok"), IMPORT)
    assert m.requires_python is None and m.summary == "ok"
    bad_name = b"Metadata-Version: 1.0\nName: -acme-\nVersion: 1.0\n"
    assert problem_of(parse_core_metadata, bad_name, IMPORT).slug == "invalid-metadata"
    bad_version = b"Metadata-Version: 1.0\nName: pytz\nVersion: 2010h\n"
    assert problem_of(parse_core_metadata, bad_version, IMPORT).slug == "invalid-metadata"


def test_unknown_fields_are_ignored_and_a_repeated_name_is_refused():
    m = parse_core_metadata(pkg_info("2.1", "X-Custom-Header: yes", "Summary: s"), PYPI)
    assert (m.name, m.summary) == ("acme", "s")
    twice = b"Metadata-Version: 2.1\nName: acme\nName: other\nVersion: 1.0\n"
    assert problem_of(parse_core_metadata, twice, PYPI).slug == "invalid-metadata"
