"""``PUT /_/blobs/<key>``, the local backend's pre-signed URLs: a real URL with one thing
wrong (a query parameter, the key, a signed header or the body), for the presigned-put and
multipart mechanisms and for ``uv publish --direct``'s reserve."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import strategies as fz
from tests.fuzz.harness import examples, fuzz_settings, time_limit
from tests.fuzz.world import World

#: The fuzz suite takes about a minute on two cores (both databases).
pytestmark = [pytest.mark.slow, time_limit()]

DEFAULT_EXAMPLES = 200
TEMPLATE = "/_/blobs/{key}"
PRESIGNED, MULTIPART = "vnd-pallet-presigned-put", "vnd-pallet-s3multipart-presigned"

query_values = st.one_of(
    st.sampled_from(
        [
            "",
            "-1",
            "0",
            "1e10",
            "9" * 30,
            "9" * 5000,
            "content-length;content-length",
            "host",
            "CONTENT-LENGTH",
            ";",
            "0" * 64,
            "g" * 64,
            "%00",
        ]
    ),
    fz.hostile_text.map(lambda s: s[:2000]),
)


def targets(world: World) -> list[tuple[str, dict[str, str], bytes]]:
    """(url, headers, body) of every live signed URL the world holds."""
    world.refresh_urls()
    presigned = world.files[PRESIGNED]["mechanism"]
    part = world.files[MULTIPART]["mechanism"]["parts"][0]
    multipart_data = world.dists[MULTIPART].data
    return [
        (presigned["url"], dict(presigned["headers"]), world.dists[PRESIGNED].data),
        (part["url"], {"Content-Length": str(part["size"])}, multipart_data[: part["size"]]),
    ]


@st.composite
def broken(draw: st.DrawFn, url: str, headers: dict[str, str], body: bytes):  # noqa: ANN201
    split = urlsplit(url)
    key = split.path.removeprefix("/_/blobs/")
    query = parse_qsl(split.query, keep_blank_values=True)
    headers = dict(headers)
    what = draw(st.integers(0, 9), label="what")
    if what == 0:  # the URL as issued: only the first one can succeed (If-None-Match: *)
        pass
    elif what <= 2:  # a query parameter changed, dropped or repeated
        i = fz.position(draw, len(query))
        name, _ = query[i]
        action = draw(st.integers(0, 2))
        if action == 0:
            query[i] = (name, draw(query_values))
        elif action == 1:
            del query[i]
        else:
            query.append((name, draw(query_values)))
    elif what == 3:  # another key
        key = draw(
            st.one_of(
                st.sampled_from(
                    [
                        key + ".parts/00001",
                        key + "/x",
                        key.rsplit("/", 1)[0],
                        "../" + key,
                        "/" + key,
                        key.replace("staging", "sha256"),
                        "direct/" + "0" * 64,
                        "secret-key",
                        "",
                    ]
                ),
                fz.hostile_segment,
            ),
            label="key",
        )
        key = quote(key.encode("utf-8", "surrogatepass"), safe="/")[:6000]
    elif what <= 5:  # a signed header changed or dropped, or an extra one sent
        name = draw(st.sampled_from([*headers, "x-amz-checksum-sha256", "If-None-Match"]))
        action = draw(st.integers(0, 2))
        if action == 0:
            headers[name] = draw(
                st.one_of(
                    st.sampled_from(["", "*", "-1", "abc", "A" * 44, "99999999999999999999"]),
                    fz.header_bytes,
                )
            )
        else:
            headers.pop(name, None)
    elif what <= 7:  # the body
        body = draw(
            st.one_of(
                st.binary(max_size=64),
                st.integers(0, 2**20).map(lambda n: body[: n % (len(body) + 1)]),
                st.just(body + b"x"),
                st.just(b"\x00" * len(body)),
            ),
            label="body",
        )
    else:  # the signature of some other content
        headers["x-amz-checksum-sha256"] = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        body = hashlib.sha256(body).digest()
    path = "/_/blobs/" + key + ("?" + urlencode(query) if query else "")
    return path, headers, body


def test_signed_put(make_world, record_property) -> None:  # noqa: ANN001
    world, fuzzer = make_world()
    count = examples(DEFAULT_EXAMPLES)
    live = targets(world)

    @fuzz_settings(DEFAULT_EXAMPLES)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        url, headers, body = data.draw(st.sampled_from(live), label="target")
        path, headers, body = data.draw(broken(url, headers, body), label="request")
        if data.draw(st.booleans(), label="with credentials"):
            headers = {**headers, **world.auth}
        r = fuzzer.request("PUT", path, template=TEMPLATE, headers=headers, content=body)
        if r.status_code == 200:  # stored: take it away again so the next valid PUT works
            world.services.store.delete(urlsplit(path).path.removeprefix("/_/blobs/"))
        fuzzer.examples += 1

    run()
    fuzzer.report(record_property, minimum=count)
