"""Upload 2.0 with near-valid requests: real session and file ids, the right credentials and
media types, and a body that is valid but for one mutated member (or its bytes damaged); now
and then a header is wrong instead. Mechanism routes included: http-post-bytes content and
attestations, multipart part lists."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import strategies as fz
from tests.fuzz.dists import hostile_dist
from tests.fuzz.harness import examples, fuzz_settings, time_limit
from tests.fuzz.world import META, PROJECT, V2, World

#: The fuzz suite takes about a minute on two cores (both databases).
pytestmark = [pytest.mark.slow, time_limit()]

DEFAULT_EXAMPLES = 300
MECHANISMS = ["http-post-bytes", "vnd-pallet-presigned-put", "vnd-pallet-s3multipart-presigned"]
PLATFORMS = ["any", "win_amd64", "linux_x86_64", "macosx_11_0_arm64", "win32"]


def attestation(filename: str, sha256: str, statement: Any = None) -> dict[str, Any]:
    if statement is None:
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": filename, "digest": {"sha256": sha256}}],
            "predicateType": "https://docs.pypi.org/attestations/publish/v1",
            "predicate": {},
        }
    return {
        "version": 1,
        "verification_material": {"certificate": "AAAA", "transparency_entries": [{}]},
        "envelope": {
            "statement": base64.b64encode(fz.encode(statement).encode()).decode(),
            "signature": "AAAA",
        },
    }


@st.composite
def json_request(draw: st.DrawFn, template: dict[str, Any]) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return fz.encode(template).encode()
    if kind == 1:
        return draw(fz.raw_mutation(fz.encode(template)))
    return fz.encode(draw(fz.mutated(template))).encode("utf-8", "surrogatepass")


Op = Callable[[st.DataObject, World], tuple[str, str, str, bytes | None, dict[str, str]]]


def _session(data: st.DataObject, world: World) -> tuple[str, str, str, bytes | None, dict]:
    root = world.upload_root
    name = data.draw(st.sampled_from([PROJECT, "fuzz-new", "other-project"]), label="name")
    version = data.draw(st.sampled_from([world.version, "1.0", "7.0", "8.0.post1"]), label="ver")
    body = data.draw(json_request({"meta": META, "name": name, "version": version}), label="body")
    return "POST", root, root, body, {}


def _file(data: st.DataObject, world: World) -> tuple[str, str, str, bytes | None, dict]:
    mechanism = data.draw(st.sampled_from(MECHANISMS), label="mechanism")
    dist = world.dists[mechanism]
    plat = data.draw(st.sampled_from(PLATFORMS), label="platform")
    filename = dist.name if plat == "any" else f"{PROJECT}-{world.version}-py3-none-{plat}.whl"
    template = {
        "meta": META,
        "filename": filename,
        "size": len(dist.data),
        "hashes": {"sha256": dist.sha256},
        "mechanism": mechanism,
    }
    body = data.draw(json_request(template), label="body")
    path = world.session_path() + "files/"
    return "POST", path, f"{world.upload_root}sessions/{{sid}}/files/", body, {}


def _session_action(data: st.DataObject, world: World) -> tuple[str, str, str, bytes | None, dict]:
    action = data.draw(st.sampled_from(["publish", "extend", "", "delete"]), label="action")
    base = f"{world.upload_root}sessions/{{sid}}/"
    if action == "":
        return "GET", world.session_path(), base, None, {}
    if action == "delete":
        return "DELETE", world.session_path(), base, None, {}
    template: dict[str, Any] = {"meta": META}
    if action == "extend":
        template["extend-for"] = data.draw(st.sampled_from([0, 60, 3600, 10**18]), label="secs")
    body = data.draw(json_request(template), label="body")
    return "POST", world.session_path() + action, base + action, body, {}


def _file_action(data: st.DataObject, world: World) -> tuple[str, str, str, bytes | None, dict]:
    mechanism = data.draw(st.sampled_from(MECHANISMS), label="mechanism")
    action = data.draw(st.sampled_from(["complete", "extend", "", "delete"]), label="action")
    path = world.file_path(mechanism)
    base = f"{world.upload_root}sessions/{{sid}}/files/{{fid}}/"
    if action == "":
        return "GET", path, base, None, {}
    if action == "delete":
        return "DELETE", path, base, None, {}
    template: dict[str, Any] = {"meta": META}
    if action == "extend":
        template["extend-for"] = data.draw(st.sampled_from([0, 60, 3600]), label="secs")
    body = data.draw(json_request(template), label="body")
    return "POST", path + action, base + action, body, {}


def _target(data: st.DataObject, mechanism: str) -> str:
    """The file a mechanism route is called on: mostly one of that mechanism, sometimes a file
    that negotiated another (its URLs were never handed out, but they answer all the same)."""
    if data.draw(st.integers(0, 4), label="other mechanism's file") == 0:
        return data.draw(st.sampled_from(MECHANISMS), label="file of")
    return mechanism


def _content(data: st.DataObject, world: World) -> tuple[str, str, str, bytes | None, dict]:
    dist = world.dists["http-post-bytes"]
    body = data.draw(
        st.one_of(
            st.just(dist.data),
            st.binary(max_size=64),
            st.integers(0, 2**20).map(lambda n: dist.data[: n % (len(dist.data) + 1)]),
            st.just(dist.data + b"\x00"),
        ),
        label="bytes",
    )
    headers = {"Content-Type": "application/octet-stream"}
    length = data.draw(
        st.one_of(
            st.none(),
            st.sampled_from(
                [
                    "",
                    "-1",
                    "+5",
                    " 5",
                    "1e3",
                    "0x10",
                    "99999999999999999999999999",
                    str(len(body) + 1),
                ]
            ),
            st.integers(0, 10**6).map(str),
        ),
        label="content-length",
    )
    if length is not None:
        headers["Content-Length"] = length
    path = world.file_path(_target(data, "http-post-bytes")) + "content"
    return "POST", path, f"{world.upload_root}sessions/{{sid}}/files/{{fid}}/content", body, headers


def _attestations(data: st.DataObject, world: World) -> tuple[str, str, str, bytes | None, dict]:
    dist = world.dists["http-post-bytes"]
    good = attestation(dist.name, dist.sha256)
    kind = data.draw(st.integers(0, 4), label="kind")
    if kind == 0:
        value: Any = [good]
    elif kind == 1:
        value = [data.draw(fz.mutated(good), label="attestation")]
    elif kind == 2:
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": dist.name, "digest": {"sha256": dist.sha256}}],
        }
        value = [attestation(dist.name, dist.sha256, data.draw(fz.mutated(statement)))]
    elif kind == 3:
        value = data.draw(fz.hostile_value, label="value")
    else:
        value = [good] * data.draw(st.sampled_from([2, 10, 1000]), label="count")
    body = fz.encode(value).encode("utf-8", "surrogatepass")
    path = world.file_path(_target(data, "http-post-bytes")) + "attestations"
    template = f"{world.upload_root}sessions/{{sid}}/files/{{fid}}/attestations"
    return "POST", path, template, body, {"Content-Type": "application/json"}


def _parts(data: st.DataObject, world: World) -> tuple[str, str, str, bytes | None, dict]:
    path = world.file_path(_target(data, "vnd-pallet-s3multipart-presigned")) + "parts"
    template = f"{world.upload_root}sessions/{{sid}}/files/{{fid}}/parts"
    if data.draw(st.booleans(), label="list"):
        return "GET", path, template, None, {}
    item = {"part-number": 1, "etag": '"1-100"'}
    value = data.draw(
        st.one_of(
            st.just([item]),
            fz.mutated(item).map(lambda m: [m]),
            fz.hostile_value,
            st.sampled_from([[{"part-number": 10**60, "etag": "x"}], [{"part-number": "1e5"}]]),
        ),
        label="parts",
    )
    body = fz.encode(value).encode("utf-8", "surrogatepass")
    return "POST", path, template, body, {"Content-Type": "application/json"}


OPS: list[Op] = [
    _session,
    _file,
    _file,
    _session_action,
    _file_action,
    _file_action,
    _content,
    _attestations,
    _parts,
]


def test_upload2_near_valid(make_world, record_property) -> None:  # noqa: ANN001
    world, fuzzer = make_world()
    auths = world.auth_headers()
    count = examples(DEFAULT_EXAMPLES)

    @fuzz_settings(DEFAULT_EXAMPLES)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        world.ensure_open()
        op = data.draw(st.sampled_from(OPS), label="operation")
        method, path, template, body, extra = op(data, world)
        headers = {"Content-Type": V2, "Accept": V2, **auths["bearer"], **extra}
        wrong = data.draw(st.integers(0, 9), label="header to break")
        if wrong == 0:
            headers["Content-Type"] = data.draw(fz.content_types, label="content-type")
        elif wrong == 1:
            headers["Accept"] = data.draw(fz.accepts.filter(bool), label="accept")
        elif wrong == 2:
            auth = auths[data.draw(st.sampled_from(list(auths)), label="auth")]
            headers.pop("Authorization")
            headers.update(auth or {})
        fuzzer.request(method, path, template=template, headers=headers, content=body)
        fuzzer.examples += 1

    run()
    fuzzer.report(record_property, minimum=count)


def test_upload2_json_bodies_refused_without_trace(make_world, record_property) -> None:  # noqa: ANN001
    """Every Upload 2.0 JSON endpoint, the hostile body alone (no other mutation)."""
    world, fuzzer = make_world()
    auth = world.auth_headers()["basic"]
    count = examples(DEFAULT_EXAMPLES // 2)
    root = world.upload_root
    targets = [
        (root, root),
        ("{s}publish", root + "sessions/{sid}/publish"),
        ("{s}extend", root + "sessions/{sid}/extend"),
        ("{s}files/", root + "sessions/{sid}/files/"),
        ("{f}complete", root + "sessions/{sid}/files/{fid}/complete"),
        ("{f}extend", root + "sessions/{sid}/files/{fid}/extend"),
    ]

    @fuzz_settings(DEFAULT_EXAMPLES // 2)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        world.ensure_open()
        shape, template = data.draw(st.sampled_from(targets), label="endpoint")
        mechanism = data.draw(st.sampled_from(MECHANISMS), label="file")
        path = shape.format(s=world.session_path(), f=world.file_path(mechanism))
        body = data.draw(
            st.one_of(
                fz.junk_body(),
                st.builds(
                    lambda v: fz.encode({"meta": META, "x": v}).encode("utf-8", "surrogatepass"),
                    fz.hostile_value,
                ),
            ),
            label="body",
        )
        headers = {"Content-Type": V2, "Accept": V2, **auth}
        fuzzer.request("POST", path, template=template, headers=headers, content=body)
        fuzzer.examples += 1

    run()
    fuzzer.report(record_property, minimum=count)


def test_world_is_sound(make_world) -> None:  # noqa: ANN001
    """The starting state the fuzz tests rely on (so that a refusal is the input's fault)."""
    world, fuzzer = make_world()
    r = world.v2("GET", world.session_path())
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "open"
    for mechanism in MECHANISMS:
        r = world.v2("GET", world.file_path(mechanism))
        assert r.json()["status"] == "pending", r.text
    dist = world.dists["http-post-bytes"]
    r = world.client.post(
        world.file_path("http-post-bytes") + "attestations",
        content=json.dumps([attestation(dist.name, dist.sha256)]),
        headers={**world.auth, "Content-Type": "application/json"},
    )
    assert r.status_code == 204, r.text
    r = world.v2("POST", world.file_path("http-post-bytes") + "complete", {})
    assert r.status_code == 201, r.text


def test_upload2_hostile_dists(make_world, record_property, tmp_path) -> None:  # noqa: ANN001
    """A whole release per example: session, file session, bytes, complete, publish, with a
    wheel whose metadata or members are hostile; every step's answer is checked."""
    world, fuzzer = make_world()
    count = examples(DEFAULT_EXAMPLES // 6)
    releases = iter(range(1, 10**9))
    headers = {"Content-Type": V2, "Accept": V2, **world.auth}
    root = world.upload_root
    f_template = f"{root}sessions/{{sid}}/files/{{fid}}/"

    def send(method: str, url: str, template: str, body: Any = None, **kw: Any) -> Any:
        content = kw.pop("content", None)
        if body is not None:
            content = json.dumps({"meta": META, **body})
        return fuzzer.request(
            method,
            url.replace("http://testserver", ""),
            template=template,
            headers=kw.pop("headers", headers),
            content=content,
        )

    def transfer(mechanism: dict[str, Any], data: bytes) -> None:
        """The bytes, as the negotiated mechanism says (signed URLs carry no credentials)."""
        if mechanism["identifier"] == "http-post-bytes":
            send(
                "POST",
                mechanism["file_url"],
                f_template + "content",
                content=data,
                headers={**world.auth, "Content-Type": "application/octet-stream"},
            )
        elif mechanism["identifier"] == "vnd-pallet-presigned-put":
            send(
                "PUT",
                mechanism["url"],
                "/_/blobs/{key}",
                content=data,
                headers=mechanism["headers"],
            )
        else:
            size = mechanism["part-size"]
            for part in mechanism["parts"]:
                start = (part["part-number"] - 1) * size
                chunk = data[start : start + part["size"]]
                headers = {"Content-Length": str(len(chunk))}
                send("PUT", part["url"], "/_/blobs/{key}", content=chunk, headers=headers)

    @fuzz_settings(DEFAULT_EXAMPLES // 6)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        version = f"6.{next(releases)}"
        hostile = data.draw(hostile_dist(tmp_path, version, "py3-none-any"), label="dist")
        dist = hostile.dist
        r = send("POST", root, root, {"name": PROJECT, "version": version})
        fuzzer.examples += 1
        if r.status_code != 201:  # checked like every answer; nothing to go on with
            return
        session = r.json()
        mechanism = data.draw(st.sampled_from(MECHANISMS), label="mechanism")
        r = send(
            "POST",
            session["links"]["upload"],
            f"{root}sessions/{{sid}}/files/",
            {
                "filename": dist.name,
                "size": len(dist.data),
                "hashes": {"sha256": dist.sha256},
                "mechanism": mechanism,
            },
        )
        if r.status_code == 202:
            fs = r.json()
            transfer(fs["mechanism"], dist.data)
            send("POST", fs["links"]["complete"], f_template + "complete", {})
        r = send("POST", session["links"]["publish"], f"{root}sessions/{{sid}}/publish", {})
        if r.status_code >= 400:
            send("DELETE", session["links"]["session"], f"{root}sessions/{{sid}}/")

    run()
    fuzzer.report(record_property, minimum=count)
