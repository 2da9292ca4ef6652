"""Every endpoint the OpenAPI document describes, plus the file and stage read routes, with every
path parameter hostile or real, any credential, any headers and any body."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import strategies as fz
from tests.fuzz.harness import examples, fuzz_settings, time_limit
from tests.fuzz.world import hostile_auth

#: The fuzz suite takes about a minute on two cores (both databases).
pytestmark = [pytest.mark.slow, time_limit()]

#: Read routes outside the document (downloads and stage previews), with their parameters.
EXTRA = [
    ("GET", "/files/{sha256}/{filename}"),
    ("GET", "/stage/{token}/simple/"),
    ("GET", "/stage/{token}/simple/{project}/"),
    ("GET", "/stage/{token}/simple/{project}"),
    ("GET", "/stage/{token}/files/{sha256}/{filename}"),
]
OTHER_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
DEFAULT_EXAMPLES = 250
MAX_SEGMENT = 6000


def operations(doc: dict) -> list[tuple[str, str]]:
    ops = [
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method != "parameters"
    ]
    return sorted(ops) + EXTRA


def fill(data: st.DataObject, template: str, real: dict[str, list[str]]) -> tuple[str, str]:
    """The template with each ``{param}`` replaced and encoded. Mostly near-valid: every
    parameter real but one, which is a real value slightly changed or a hostile one for its
    kind (a 5,000-digit version for a project that exists, say); sometimes all hostile."""
    names = [part[1:-1] for part in template.split("/") if part.startswith("{")]
    mode = data.draw(st.integers(0, 9), label="mode")  # 0-1 all real, 2-7 one off, 8-9 all off
    odd = fz.position(data.draw, len(names)) if names else -1
    path, notes = template, []
    for i, name in enumerate(names):
        pool = real.get(name) or ["x"]
        value = data.draw(st.sampled_from(pool), label=name)
        if mode >= 8 or (mode >= 2 and i == odd):
            value = data.draw(fz.near_segment(name, value), label=f"{name} changed")
        safe = "/" if name == "key" and data.draw(st.booleans(), label="raw slashes") else ""
        encoded = quote(value.encode("utf-8", "surrogatepass"), safe=safe)
        # A server takes request lines up to some size (h11: 16 KiB); longer is not our concern.
        if len(encoded) > MAX_SEGMENT:
            encoded = encoded[:MAX_SEGMENT]
            encoded = encoded[: encoded.rindex("%")] if "%" in encoded[-2:] else encoded
        path = path.replace("{" + name + "}", encoded)
        notes.append(f"{name}={fz.encode(value)[:80]}")
    return path, ", ".join(notes)


def run_every_endpoint(make_world, record_property, count: int, **overrides) -> None:  # noqa: ANN001
    world, fuzzer = make_world(**overrides)
    ops = operations(fuzzer.schemas.doc)
    auths = world.auth_headers()
    bad_auth = hostile_auth(world.tokens["upload"])

    @fuzz_settings(count)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        method, template = data.draw(st.sampled_from(ops), label="operation")
        if data.draw(st.integers(0, 9), label="other method") == 0:
            method = data.draw(st.sampled_from(OTHER_METHODS), label="method")
        path, note = fill(data, template, world.real_values())
        if data.draw(st.booleans(), label="query"):
            path += "?" + data.draw(
                st.sampled_from(
                    [
                        "format=application/vnd.pypi.simple.v1+json",
                        "format=*/*",
                        "format=a&format=b",
                        "X-Pallet-Expires=99999999999999999999999",
                        "X-Pallet-Expires=-1&X-Pallet-SignedHeaders=host",
                        "%00=%00",
                        "a=" + "b" * 5000,
                    ]
                ),
                label="query",
            )
        headers: dict = {}
        auth = data.draw(st.sampled_from([*auths, "hostile"]), label="auth")
        if auth == "hostile":
            headers["Authorization"] = data.draw(st.sampled_from(bad_auth), label="bad auth")
        elif auths[auth]:
            headers.update(auths[auth])
        if data.draw(st.booleans(), label="content type"):
            headers["Content-Type"] = data.draw(fz.content_types, label="content-type")
        accept = data.draw(fz.accepts, label="accept")
        if accept is not None:
            headers["Accept"] = accept
        if data.draw(st.integers(0, 4), label="if-none-match") == 0:
            headers["If-None-Match"] = data.draw(fz.header_bytes, label="etag")
        body = None
        if method in ("POST", "PUT", "PATCH") or data.draw(st.integers(0, 5)) == 0:
            body = data.draw(fz.junk_body(), label="body")
        fuzzer.request(
            method,
            path,
            template=template if method.lower() in _methods(fuzzer, template) else None,
            headers=headers,
            content=body,
            note=note,
        )
        fuzzer.examples += 1

    run()
    fuzzer.report(record_property, minimum=examples(count))


def _methods(fuzzer, template: str) -> set[str]:  # noqa: ANN001
    return set(fuzzer.schemas.doc["paths"].get(template, {}))


def test_every_endpoint(make_world, record_property) -> None:  # noqa: ANN001
    run_every_endpoint(make_world, record_property, DEFAULT_EXAMPLES)


@pytest.mark.parametrize("root", ["/api/v2/upload/"])
def test_every_endpoint_private_index_other_root(make_world, record_property, root: str) -> None:  # noqa: ANN001
    run_every_endpoint(
        make_world, record_property, DEFAULT_EXAMPLES // 3, private=True, upload_root=root
    )
