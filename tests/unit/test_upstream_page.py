"""Reading an upstream's project page: what is passed through, what is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pallet.core.upstream_page import JSON, PageError, parse

SHA = "a" * 64
META = "b" * 64
PAGE_URL = "https://up.example/simple/demo/"


def page(*files: dict, serial: int | None = 7) -> bytes:
    meta = {"api-version": "1.1", **({"_last-serial": serial} if serial is not None else {})}
    return json.dumps(
        {"meta": meta, "name": "demo", "versions": ["1.0"], "files": list(files)}
    ).encode()


def entry(**over: object) -> dict:
    return {"filename": "demo-1.0-py3-none-any.whl", "url": "../../files/demo.whl",
            "hashes": {"sha256": SHA}, "requires-python": ">=3.9", "size": 10,
            "upload-time": "2025-01-02T03:04:05.000000Z", "yanked": "broken",
            "core-metadata": {"sha256": META}, **over}  # fmt: skip


def test_json_pages_pass_every_field_through() -> None:
    project = parse(page(entry()), JSON, PAGE_URL, "demo")
    (f,) = project.files
    assert f.url == "https://up.example/files/demo.whl"  # absolute, against the page's URL
    assert (f.sha256, f.size, f.requires_python, f.yanked) == (SHA, 10, ">=3.9", "broken")
    assert f.upload_time == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert f.core_metadata_sha256 == META
    assert project.serial == 7 and project.versions == ["1.0"]


def test_files_without_a_sha256_are_left_out_and_counted() -> None:
    project = parse(page(entry(), entry(filename="demo-1.0.tar.gz", hashes={"md5": "x"})), JSON, PAGE_URL, "demo")  # fmt: skip
    assert [f.filename for f in project.files] == ["demo-1.0-py3-none-any.whl"]
    assert project.unhashed == 1


def test_html_pages_are_read_when_that_is_all_there_is() -> None:
    html = (
        '<html><body><a href="/files/demo-1.0.tar.gz#sha256=' + SHA + '" '
        'data-requires-python="&gt;=3.9" data-yanked="" data-core-metadata="sha256=' + META + '">'
        'demo-1.0.tar.gz</a><a href="/files/demo-0.9.tar.gz">demo-0.9.tar.gz</a></body></html>'
    ).encode()
    project = parse(html, "text/html; charset=utf-8", PAGE_URL, "demo")
    (f,) = project.files
    assert (f.filename, f.url) == ("demo-1.0.tar.gz", "https://up.example/files/demo-1.0.tar.gz")
    assert (f.requires_python, f.yanked, f.core_metadata_sha256) == (">=3.9", "", META)
    assert f.size is None and f.upload_time is None and project.unhashed == 1


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{", JSON),
        (b"[]", JSON),
        (json.dumps({"meta": {"api-version": "2.0"}, "files": []}).encode(), JSON),
        (page(entry(filename="../../etc/passwd")), JSON),
        (page(entry(filename="a/b.whl")), JSON),
        (page(entry(url="file:///etc/passwd")), JSON),
        (page(entry(url="javascript:alert(1)")), JSON),
        (page({"filename": "x.whl"}), JSON),
        (b"x", "application/octet-stream"),
        (b"[" * 100_000, JSON),
    ],
)
def test_pages_not_to_be_trusted_are_refused(body: bytes, content_type: str) -> None:
    with pytest.raises(PageError):
        parse(body, content_type, PAGE_URL, "demo")
