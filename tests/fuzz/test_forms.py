"""The multipart endpoints: the legacy form upload and ``uv publish --direct``'s reserve/finalize,
with one field, the file part or the framing broken, and with distributions whose own metadata
or archive members are hostile (built fresh, so a valid one is published: deep paths run)."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import strategies as fz
from tests.fuzz.dists import hostile_dist
from tests.fuzz.harness import basic, examples, fuzz_settings, time_limit
from tests.fuzz.world import PROJECT, Dist

#: The fuzz suite takes about a minute on two cores (both databases).
pytestmark = [pytest.mark.slow, time_limit()]

DEFAULT_EXAMPLES = 150
FORM_HEADERS = {"Accept": "application/json;q=0.9, text/plain;q=0.8, text/html;q=0.7"}


def form_fields(dist: Dist, version: str, *, name: str = PROJECT) -> list[tuple[str, str]]:
    wheel = dist.name.endswith(".whl")
    return [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", "2.4"),
        ("name", name),
        ("version", version),
        ("filetype", "bdist_wheel" if wheel else "sdist"),
        ("pyversion", "py3" if wheel else "source"),
        ("md5_digest", hashlib.md5(dist.data).hexdigest()),  # noqa: S324 - what twine sends
        ("sha256_digest", dist.sha256),
        ("blake2_256_digest", hashlib.blake2b(dist.data, digest_size=32).hexdigest()),
        ("requires_python", ""),
        ("summary", "A test package"),
    ]


def send_form(
    fuzzer, path: str, template: str, parts, boundary: bytes, closed: bool, auth, note: str
):  # noqa: ANN001, ANN201
    body = fz.multipart(parts, boundary, close=closed)
    headers = {**FORM_HEADERS, "Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}
    headers.update(auth or {})
    return fuzzer.request("POST", path, template=template, headers=headers, content=body, note=note)


def test_legacy_form(make_world, record_property, tmp_path: Path) -> None:  # noqa: ANN001
    world, fuzzer = make_world()
    auths = world.auth_headers()
    count = examples(DEFAULT_EXAMPLES)
    base = world.wheel("3.0")

    @fuzz_settings(DEFAULT_EXAMPLES)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        url = data.draw(st.sampled_from(["/legacy/", "/legacy", "/"]), label="url")
        auth = auths[
            data.draw(
                st.sampled_from(
                    ["bearer", "basic", "basic", "import", "none", "read", "other-project"]
                ),
                label="auth",
            )
        ]
        if data.draw(st.booleans(), label="hostile dist"):
            hostile = data.draw(hostile_dist(tmp_path), label="dist")
            dist, version, note = hostile.dist, hostile.version, hostile.note
            parts = [fz.Part(k, v.encode()) for k, v in form_fields(dist, version)]
            parts.append(fz.Part("content", dist.data, dist.name, "application/octet-stream"))
            boundary, closed = b"b" + secrets.token_hex(8).encode(), True
        else:
            file_part = fz.Part("content", base.data, base.name, "application/octet-stream")
            parts, boundary, closed = data.draw(
                fz.mutated_form(form_fields(base, "3.0"), file_part), label="form"
            )
            note = ""
        send_form(fuzzer, url, url, parts, boundary, closed, auth, note)
        fuzzer.examples += 1

    run()
    fuzzer.report(record_property, minimum=count)


def test_direct_reserve_finalize(make_world, record_property, tmp_path: Path) -> None:  # noqa: ANN001
    world, fuzzer = make_world()
    auths = world.auth_headers()
    count = examples(DEFAULT_EXAMPLES)
    # The file finalize is for: a new version once one is published, so finalize keeps
    # verifying bytes instead of answering "already uploaded".
    current = {"dist": world.wheel("5.0"), "version": "5.0", "n": 0}

    def put(dist: Dist, version: str) -> None:
        """reserve + PUT, as uv does, so that finalize finds bytes."""
        fields = [*form_fields(dist, version), ("filename", dist.name)]
        parts = [fz.Part(k, v.encode()) for k, v in fields]
        r = send_form(
            fuzzer,
            "/direct/reserve",
            "/direct/reserve",
            parts,
            b"bnd",
            True,
            auths["basic"],
            "reserve",
        )
        if r.status_code == 201 and r.json().get("upload_url"):
            body = r.json()
            fuzzer.request(
                "PUT",
                body["upload_url"].replace("http://testserver", ""),
                template="/_/blobs/{key}",
                headers={**body["upload_headers"], "Content-Type": "application/octet-stream"},
                content=dist.data,
                note="direct PUT",
            )

    @fuzz_settings(DEFAULT_EXAMPLES)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        path = data.draw(
            st.sampled_from(
                ["/direct/reserve", "/direct/finalize", "/direct//finalize", "/direct//reserve"]
            ),
            label="url",
        )
        auth = auths[
            data.draw(
                st.sampled_from(["basic", "bearer", "import", "none", "read", "other-project"]),
                label="auth",
            )
        ]
        if data.draw(st.integers(0, 3), label="hostile dist") == 0:
            hostile = data.draw(hostile_dist(tmp_path), label="dist")
            put(hostile.dist, hostile.version)
            fields = [*form_fields(hostile.dist, hostile.version), ("filename", hostile.dist.name)]
            parts = [fz.Part(k, v.encode()) for k, v in fields]
            boundary, closed, note = b"bnd" + secrets.token_hex(4).encode(), True, hostile.note
            path = path.replace("reserve", "finalize")
        else:
            staged, version = current["dist"], current["version"]
            if world.services.store.size(f"direct/{staged.sha256}") is None:
                put(staged, version)
            fields = [*form_fields(staged, version), ("filename", staged.name)]
            parts, boundary, closed = data.draw(fz.mutated_form(fields, None), label="form")
            note = ""
        r = send_form(fuzzer, path, path, parts, boundary, closed, auth, note)
        if r.status_code == 200 and "finalize" in path:
            current["n"] += 1
            current["version"] = f"5.{current['n']}"
            current["dist"] = world.wheel(current["version"])
        fuzzer.examples += 1

    run()
    fuzzer.report(record_property, minimum=count)


def test_form_framing(make_world, record_property) -> None:  # noqa: ANN001
    """Bodies that are not a form at all, or a form of the wrong kind, on every form endpoint."""
    world, fuzzer = make_world()
    auth = {"Authorization": basic(world.tokens["upload"])}
    count = examples(DEFAULT_EXAMPLES // 2)
    targets = ["/legacy/", "/", "/direct/reserve", "/direct/finalize"]

    @fuzz_settings(DEFAULT_EXAMPLES // 2)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        path = data.draw(st.sampled_from(targets), label="url")
        content_type = data.draw(
            st.one_of(
                st.sampled_from(
                    [
                        "multipart/form-data; boundary=x",
                        "multipart/form-data; boundary=" + "x" * 200,
                        'multipart/form-data; boundary="a b"',
                        "multipart/form-data; boundary=x; boundary=y",
                        "multipart/form-data; charset=utf-8",
                        "multipart/mixed; boundary=x",
                        "application/x-www-form-urlencoded",
                    ]
                ),
                fz.content_types,
            ),
            label="content-type",
        )
        body = data.draw(
            st.one_of(
                fz.junk_body(),
                st.sampled_from(
                    [
                        b"--x\r\n",
                        b"--x--\r\n",
                        b"--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--\r\n",
                        b'--x\r\nContent-Disposition: form-data; name="content"; filename="a.whl"\r\n\r\n',
                        b"--x\r\n" + b"X-H: v\r\n" * 100 + b"\r\n\r\n--x--\r\n",
                        b":action=file_upload&name=x",
                    ]
                ),
            ),
            label="body",
        )
        headers = {**auth, **FORM_HEADERS}
        if isinstance(content_type, bytes) or content_type:
            headers["Content-Type"] = content_type
        fuzzer.request("POST", path, template=path, headers=headers, content=body)
        fuzzer.examples += 1

    run()
    fuzzer.report(record_property, minimum=count)
