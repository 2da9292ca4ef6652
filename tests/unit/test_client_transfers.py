"""How one file's bytes leave the machine: which mechanism, which hashes are declared, the
re-readable body and the rate limit, and the legacy form built from the file's own metadata."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from python_multipart import parse_form

from pallet.client import transfers
from pallet.client.dists import Dist, inspect
from pallet.client.legacy import FormBody, form_fields
from pallet.client.transfers import (
    HTTP_POST_BYTES,
    MULTIPART,
    PRESIGNED_PUT,
    Canceled,
    FileRange,
    Meter,
    RateLimit,
    choose,
    declared_hashes,
)
from pallet.client.transport import ClientError
from tests.dists import make_sdist, make_wheel

MiB = 1 << 20


@pytest.fixture
def wheel(tmp_path: Path) -> Dist:
    d = inspect(make_wheel(tmp_path, "acme", "1.0"))
    d.hash_file()
    return d


def sized(d: Dist, size: int, attestations: list[Path] | None = None) -> Dist:
    d.size, d.attestations = size, attestations or []
    return d


# -- choose / declared_hashes -------------------------------------------------------------------


def test_choose_forced_wins_even_when_not_offered(wheel):
    assert choose([PRESIGNED_PUT], wheel, forced=HTTP_POST_BYTES, multipart_threshold=0) == (
        HTTP_POST_BYTES
    )
    assert choose([], wheel, forced="vnd-x", multipart_threshold=0) == "vnd-x"


def test_choose_attestations_force_http_post_bytes(wheel, tmp_path):
    """Only http-post-bytes carries an ``attestations_url``."""
    d = sized(wheel, 100 * MiB, [tmp_path / "a.publish.attestation"])
    offered = [MULTIPART, PRESIGNED_PUT, HTTP_POST_BYTES]
    assert choose(offered, d, forced=None, multipart_threshold=MiB) == HTTP_POST_BYTES


def test_choose_multipart_only_at_the_threshold_and_only_when_offered(wheel):
    offered = [MULTIPART, PRESIGNED_PUT, HTTP_POST_BYTES]
    pick = lambda size, offer=offered: choose(  # noqa: E731
        offer, sized(wheel, size), forced=None, multipart_threshold=64 * MiB
    )
    assert pick(64 * MiB) == MULTIPART
    assert pick(64 * MiB - 1) == PRESIGNED_PUT
    assert pick(10 * 64 * MiB, [PRESIGNED_PUT, HTTP_POST_BYTES]) == PRESIGNED_PUT


def test_choose_follows_the_servers_order_and_ignores_unknown_mechanisms(wheel):
    def pick(offered: list[str]) -> str:
        return choose(offered, sized(wheel, 10), forced=None, multipart_threshold=MiB)

    assert pick([HTTP_POST_BYTES, PRESIGNED_PUT]) == HTTP_POST_BYTES
    assert pick(["vnd-other-magic", PRESIGNED_PUT, HTTP_POST_BYTES]) == PRESIGNED_PUT
    assert pick(["vnd-other-magic"]) == HTTP_POST_BYTES
    assert pick([MULTIPART]) == HTTP_POST_BYTES  # small file: multipart is not for it
    assert pick([]) == HTTP_POST_BYTES


def test_declared_hashes_straight_to_the_store_declare_only_sha256(wheel):
    for mechanism in (PRESIGNED_PUT, MULTIPART):
        assert declared_hashes(mechanism, wheel) == {"sha256": wheel.hashes["sha256"]}
    assert declared_hashes(HTTP_POST_BYTES, wheel) == {
        "sha256": wheel.hashes["sha256"],
        "blake2b": wheel.hashes["blake2b"],
    }


# -- FileRange / Meter / RateLimit --------------------------------------------------------------


@pytest.fixture
def data_file(tmp_path, monkeypatch) -> tuple[Path, bytes]:
    monkeypatch.setattr(transfers, "CHUNK", 4)  # several reads from a small file
    data = bytes(range(40))
    (tmp_path / "blob").write_bytes(data)
    return tmp_path / "blob", data


def test_file_range_reads_its_exact_range_on_every_call(data_file):
    path, data = data_file
    body = FileRange(path, 7, 10, Meter(progress=lambda n: None))
    first, second = list(body()), list(body())
    assert first == [data[7:11], data[11:15], data[15:17]]
    assert second == first


def test_file_range_retry_rewinds_progress_but_not_wire_bytes(data_file):
    path, _ = data_file
    progress: list[int] = []
    meter = Meter(progress=progress.append)
    body = FileRange(path, 0, 10, meter)
    attempt = body()
    next(attempt)  # the first attempt dies after one chunk
    list(body())
    assert progress == [4, -4, 4, 4, 2]
    assert sum(progress) == 10 and meter.wire_bytes == 14


def test_file_range_shrunk_file_and_cancel(data_file):
    path, _ = data_file
    with pytest.raises(ClientError, match="shrank"):
        list(FileRange(path, 30, 20, Meter(progress=lambda n: None))())
    meter = Meter(progress=lambda n: None)
    meter.cancel.set()
    with pytest.raises(Canceled):
        next(FileRange(path, 0, 10, meter)())


def test_rate_limit_sleeps_by_the_amount_ahead_of_the_rate(monkeypatch):
    clock = SimpleNamespace(now=1000.0, slept=[])

    def sleep(seconds: float) -> None:
        clock.slept.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(
        transfers, "time", SimpleNamespace(monotonic=lambda: clock.now, sleep=sleep)
    )
    limit = RateLimit(100)  # bytes per second
    meter = Meter(progress=lambda n: None, limit=limit)
    meter.add(100)  # 1 s of budget at t=0: sleep it off
    meter.add(50)  # 1.5 s of budget by t=1
    meter.add(-150, wire=False)  # a rewind is not traffic
    clock.now += 10  # idle: the average is far below the rate
    meter.add(100)
    assert clock.slept == pytest.approx([1.0, 0.5])
    assert limit.sent == 250 and meter.wire_bytes == 250


# -- legacy form --------------------------------------------------------------------------------

RICH = """\
Metadata-Version: 2.4
Name: Acme.Widgets
Version: 1.0
Summary: Widgets, all of them
Keywords: web, api,widgets
Classifier: Programming Language :: Python :: 3
Classifier: License :: OSI Approved :: Apache Software License
Project-URL: Homepage, https://acme.example/
Project-URL: Issue Tracker, https://acme.example/issues
Requires-Dist: httpx>=0.27
Requires-Dist: rich; extra == "cli"
Provides-Extra: cli
Description-Content-Type: text/markdown

# Acme widgets
"""


def test_form_fields_from_rich_metadata(tmp_path):
    d = inspect(make_wheel(tmp_path, "Acme.Widgets", "1.0", metadata=RICH, tag="py2.py3-none-any"))
    d.hash_file()
    fields = form_fields(d)
    got = dict(fields)
    many = lambda name: [v for k, v in fields if k == name]  # noqa: E731
    data = d.path.read_bytes()
    assert fields[:2] == [(":action", "file_upload"), ("protocol_version", "1")]
    assert (got["name"], got["version"], got["metadata_version"]) == ("Acme.Widgets", "1.0", "2.4")
    assert (got["filetype"], got["pyversion"]) == ("bdist_wheel", "py2.py3")
    assert got["sha256_digest"] == hashlib.sha256(data).hexdigest()
    assert got["blake2_256_digest"] == hashlib.blake2b(data, digest_size=32).hexdigest()
    assert got["keywords"] == "web,api,widgets"
    assert many("classifiers") == [
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
    ]
    assert many("project_urls") == [
        "Homepage, https://acme.example/",
        "Issue Tracker, https://acme.example/issues",
    ]
    assert many("requires_dist") == ["httpx>=0.27", 'rich; extra == "cli"']
    assert many("provides_extra") == ["cli"]
    assert got["description"].strip() == "# Acme widgets"
    assert got["description_content_type"] == "text/markdown"
    assert many("requires_python") == [""]  # always sent, as uv and twine do


def test_form_fields_for_an_sdist_with_requires_python(tmp_path):
    d = inspect(make_sdist(tmp_path, "acme", "2.0"))
    d.metadata["requires_python"] = ">=3.11"
    d.hash_file()
    got = dict(form_fields(d))
    assert (got["filetype"], got["pyversion"], got["requires_python"]) == (
        "sdist",
        "source",
        ">=3.11",
    )


def parse(body: FormBody) -> tuple[list[tuple[str, str]], dict[str, tuple[str, bytes]]]:
    raw = b"".join(body())
    assert len(raw) == body.length == int(body.headers["Content-Length"])
    fields: list[tuple[str, str]] = []
    files: dict[str, tuple[str, bytes]] = {}
    parse_form(
        {k: v.encode() for k, v in body.headers.items()},
        io.BytesIO(raw),
        lambda f: fields.append((f.field_name.decode(), (f.value or b"").decode())),
        lambda f: files.__setitem__(
            f.field_name.decode(), (f.file_name.decode(), f.file_object.getvalue())
        ),
    )
    return fields, files


def test_form_body_is_exactly_length_bytes_and_parses_back(tmp_path):
    d = inspect(make_wheel(tmp_path, "Acme.Widgets", "1.0", metadata=RICH))
    d.hash_file()
    progress: list[int] = []
    body = FormBody(d, Meter(progress=progress.append))
    fields, files = parse(body)
    assert fields == form_fields(d)
    assert files == {"content": (d.filename, d.path.read_bytes())}
    assert sum(progress) == d.size
    fields_again, files_again = parse(body)  # a retry re-streams the same form
    assert (fields_again, files_again) == (fields, files) and sum(progress) == d.size


def test_form_body_carries_attestations_as_a_field(tmp_path):
    d = inspect(make_wheel(tmp_path, "acme", "1.0"))
    Path(f"{d.path}.publish.attestation").write_text('{"version": 1}')
    d = inspect(d.path)
    d.hash_file()
    fields, files = parse(FormBody(d, Meter(progress=lambda n: None)))
    assert dict(fields)["attestations"] == '[{"version": 1}]'
    assert files["content"][1] == d.path.read_bytes()
