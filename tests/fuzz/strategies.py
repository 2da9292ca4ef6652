"""Hypothesis strategies for hostile HTTP input: JSON that ``json.dumps`` cannot write (deep
nesting, 5,000-digit numbers, duplicate keys), near-valid bodies with one field mutated, path
parameters, header values, and multipart forms built by hand so that they can be broken anywhere.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

# --- JSON text with parts json.dumps refuses to write -------------------------------------------


@dataclass(frozen=True)
class Raw:
    """JSON text inserted verbatim: deep nesting, huge numbers, NaN, broken tokens."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """An object with its members in order, duplicate keys allowed."""

    items: tuple[tuple[str, Any], ...]


class Omit:
    """Marks a member to drop from a template."""


OMIT = Omit()


def encode(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value.items) + "}"
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value.items() if v is not OMIT)
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value)


# --- hostile scalar and container values --------------------------------------------------------

#: Text a client can put in a URL or JSON string: any code point except lone surrogates (which
#: cannot be UTF-8 encoded by the client; JSON-escaped surrogates are generated separately).
ANY_TEXT = st.characters(exclude_categories=("Cs",))

HUGE_DIGITS = (20, 64, 65, 300, 4301, 5000)


def deep(depth: int, opener: str = "[") -> Raw:
    closer = {"[": "]", "{": "}"}[opener]
    if opener == "{":
        return Raw('{"a":' * depth + "1" + "}" * depth)
    return Raw(opener * depth + closer * depth)


@st.composite
def huge_number(draw: st.DrawFn) -> Raw:
    digits = draw(st.sampled_from(HUGE_DIGITS))
    sign = draw(st.sampled_from(["", "-"]))
    tail = draw(st.sampled_from(["", ".5", "e5", "e999999", "E-400"]))
    return Raw(sign + "9" * digits + tail)


special_numbers = st.sampled_from(
    [
        Raw("NaN"),
        Raw("Infinity"),
        Raw("-Infinity"),
        Raw("1e400"),
        Raw("-0"),
        Raw("0.0"),
        Raw("1.0"),
        Raw("01"),
        Raw("1e-400"),
        Raw("0x10"),
        2**31,
        2**63,
        2**64,
        -(2**63) - 1,
        -1,
        0,
        1,
        True,
        False,
        None,
    ]
)

escaped_strings = st.sampled_from(
    [
        Raw('"\\ud800"'),  # a lone surrogate, legal JSON
        Raw('"\\udfff\\ud800"'),
        Raw('"\\u0000"'),
        Raw('"a\\u0000b"'),
        Raw('"\\uffff"'),
        Raw('"\\x41"'),  # not a JSON escape
        Raw('"unterminated'),
        Raw("'single'"),
    ]
)


@st.composite
def long_string(draw: st.DrawFn) -> str:
    n = draw(st.sampled_from([256, 1025, 4097, 16 * 1024 + 1, 70_000]))
    ch = draw(st.sampled_from(["a", "é", "\x00", "\U0001f600", "9", "/"]))
    return ch * n


hostile_text = st.one_of(
    st.text(ANY_TEXT, max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a\x00b",
            "../../etc/passwd",
            "..",
            "\u202e",
            "e\u0301",
            "\U0001f600",
            "%00",
            "%2F",
            "\\",
            "\r\n",
            "1" * 5000,
            "1." + "9" * 5000,
            "1.0.dev" + "9" * 5000,
        ]
    ),
    long_string(),
)

hostile_scalar = st.one_of(
    special_numbers,
    huge_number(),
    st.integers(min_value=-(10**80), max_value=10**80),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
    escaped_strings,
)


@st.composite
def deep_value(draw: st.DrawFn) -> Raw:
    depth = draw(st.sampled_from([2, 31, 32, 33, 100, 1000, 20_000]))
    return deep(depth, draw(st.sampled_from(["[", "{"])))


hostile_value = st.one_of(
    hostile_scalar,
    deep_value(),
    st.recursive(
        hostile_scalar,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.text(ANY_TEXT, max_size=8), inner, max_size=4),
        ),
        max_leaves=8,
    ),
)


# --- whole bodies ---------------------------------------------------------------------------------


@st.composite
def junk_body(draw: st.DrawFn) -> bytes:
    """Anything at all: bytes, a JSON value of the wrong shape, text in another encoding."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.binary(max_size=512))
    if kind == 1:
        return encode(draw(hostile_value)).encode("utf-8", "surrogatepass")
    if kind == 2:
        return draw(st.sampled_from([b"", b" ", b"null", b"[]", b"{}", b"\xef\xbb\xbf{}", b"{"]))
    if kind == 3:
        text = encode(draw(hostile_value))
        return text.encode(draw(st.sampled_from(["utf-16", "utf-32", "utf-16-be"])), "replace")
    if kind == 4:
        return encode(deep(draw(st.sampled_from([33, 5000, 40_000])))).encode()
    return b"x" * draw(st.sampled_from([65 * 1024, 5 * 2**20]))


@st.composite
def mutated(draw: st.DrawFn, template: dict[str, Any]) -> Any:
    """``template`` with one thing wrong: a member replaced, dropped, duplicated or added, the
    whole body swapped for another shape, or ``meta`` broken."""
    keys = list(template)
    action = draw(st.integers(0, 8))
    body: dict[str, Any] = dict(template)
    if action <= 2 and keys:  # replace one member (the most useful mutation: weighted)
        key = draw(st.sampled_from(keys))
        body[key] = draw(hostile_value)
        return body
    if action == 3 and keys:
        body[draw(st.sampled_from(keys))] = OMIT
        return body
    if action == 4 and keys:  # duplicate key: the second one wins in json.loads
        key = draw(st.sampled_from(keys))
        return Pairs((*body.items(), (key, draw(hostile_value))))
    if action == 5:
        body[draw(st.text(ANY_TEXT, max_size=20))] = draw(hostile_value)
        return body
    if action == 6:  # meta broken
        body["meta"] = draw(
            st.one_of(
                hostile_value,
                st.fixed_dictionaries({"api-version": hostile_value}),
                st.sampled_from(
                    [
                        {"api-version": "1.0"},
                        {"api-version": "3.0"},
                        {"api-version": "2"},
                        {"api-version": "2.x"},
                        {"api-version": "2." + "0" * 5000},
                        {"api-version": "2.0", "_x": deep(10_000)},
                    ]
                ),
            )
        )
        return body
    if action == 7:  # nested one level deeper into a dict member
        dict_keys = [k for k, v in body.items() if isinstance(v, dict) and v]
        if dict_keys:
            key = draw(st.sampled_from(dict_keys))
            inner = dict(body[key])
            inner[draw(st.sampled_from([*inner, "extra"]))] = draw(hostile_value)
            body[key] = inner
            return body
    return draw(st.one_of(hostile_value, st.lists(st.just(template), max_size=2)))


@st.composite
def raw_mutation(draw: st.DrawFn, text: str) -> bytes:
    """Byte-level damage to a valid body: truncated, junk appended, a byte flipped, re-encoded."""
    data = text.encode()
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return data[: position(draw, len(data))]
    if kind == 1:
        return data + draw(st.sampled_from([b"x", b"}", b",", b"\x00", b"\xff", b" " * 70_000]))
    if kind == 2 and data:
        i = position(draw, len(data))
        return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1 :]
    if kind == 3:
        return text.encode(draw(st.sampled_from(["utf-16", "utf-32", "latin-1"])), "replace")
    return b"\xef\xbb\xbf" + data


# --- path parameters ------------------------------------------------------------------------------

hostile_segment = st.one_of(
    hostile_text.filter(lambda s: s not in ("", ".", "..")),
    st.sampled_from(
        [
            "0" * 32,
            "f" * 32,
            "F" * 32,
            "0" * 31,
            "0" * 33,
            "0" * 64,
            "g" * 32,
            "-1",
            "9" * 5000,
            "a" * 10_000,
            "null",
            "%",
            "%zz",
            "a%00b",
            "x.metadata",
            "..%2F..%2Fsecret-key",
        ]
    ),
    st.text(st.sampled_from("0123456789abcdef"), min_size=1, max_size=70),
)


#: Hostile values that mean something for one kind of path parameter.
KIND_VALUES = {
    "version": [
        "1." + "9" * 5000,
        "9" * 5000,
        "1.0.post" + "9" * 5000,
        "1.0+" + "a" * 300,
        "1.0+local.\x00",
        "v1.0",
        "1..0",
        "1.0.dev-1",
        "\u0661.\u0660",  # Arabic-Indic digits: int() reads them
        "\uff11.\uff10",  # fullwidth digits
        "1.0 ",
        "1.0\n",
        "*",
        "1.0a" + "1" * 4301,
    ],
    "project": [
        "FUZZPKG",
        "fuzz.pkg",
        "fuzz--pkg",
        "-fuzzpkg",
        "fuzzpkg-",
        "\uff26\uff35\uff3a\uff3apkg",  # fullwidth letters
        "fu\u017fzpkg",  # long s: lower() keeps it, casefold() does not
        "fuzzpkg\x00",
        "\u0130",  # dotted capital I: lower() makes two code points
        "a" * 10_000,
    ],
    "sha256": ["0" * 64, "A" * 64, "0" * 63, "0" * 65, "%00" * 32, "g" * 64],
    "filename": ["../secret-key", "x.whl.metadata", ".metadata", "x" * 5000 + ".whl", "\x00.whl"],
    "token": ["=" * 32, "-" * 32, "_" * 32, "A" * 10_000],
    "key": [
        "staging/../secret-key",
        "staging/x/y",
        "direct/../../x",
        "sha256/00/" + "0" * 64,
        "//",
    ],
}


@st.composite
def near_segment(draw: st.DrawFn, kind: str, real: str) -> str:
    """A path parameter one step from ``real``: changed a little, or hostile for its kind."""
    action = draw(st.integers(0, 9))
    if action == 0:
        return real.upper()
    if action == 1:
        return real + draw(st.sampled_from(["0", "/", "\x00", "%", ".", " ", "\u0301", "x" * 5000]))
    if action == 2:
        return real[:-1]
    if action == 3 and real:
        i = position(draw, len(real))
        return real[:i] + draw(st.sampled_from(["\x00", "%00", "/", "\u202e", ".."])) + real[i:]
    if action <= 6 and kind in KIND_VALUES:
        return draw(st.sampled_from(KIND_VALUES[kind]))
    return draw(hostile_segment)


def position(draw: st.DrawFn, n: int) -> int:
    """An index below ``n`` (0 if ``n`` is 0) drawn without depending on ``n``: the sizes of
    the world's files change as it moves on, and Hypothesis wants the same draws each time."""
    return draw(st.integers(0, 2**20)) % n if n > 0 else 0


def hex_id() -> str:
    return secrets.token_hex(16)


# --- headers --------------------------------------------------------------------------------------

#: Bytes an HTTP/1.1 server would pass on in a header value (no CR, LF or NUL).
header_bytes = st.binary(max_size=80).map(
    lambda b: bytes(c for c in b if c not in (0, 10, 13)).strip()
)

V2 = "application/vnd.pypi.upload.v2+json"

content_types = st.one_of(
    st.sampled_from(
        [
            V2,
            V2 + "; charset=utf-8",
            V2.upper(),
            "application/json",
            "application/vnd.pypi.upload.v1+json",
            "application/vnd.pypi.upload.v2+json;;;",
            "text/plain",
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "application/octet-stream",
            "",
        ]
    ),
    header_bytes,
)

accepts = st.one_of(
    st.sampled_from(
        [
            None,
            V2,
            "*/*",
            "application/json",
            "text/html",
            "application/*;q=0",
            "*/*;q=nan",
            "*/*;q=1e999",
            "text/html;q=-1",
            "application/vnd.pypi.simple.v1+json;q=0.;q=0.9",
            ";;;,,,",
            "*/*;q=" + "9" * 5000,
            "application/vnd.pypi.simple.latest+json, text/html;q=0.01",
        ]
    ),
    header_bytes,
)


# --- multipart forms ------------------------------------------------------------------------------


@dataclass
class Part:
    name: str | bytes
    value: bytes
    filename: str | bytes | None = None
    content_type: str | None = None


def _quoted(value: str | bytes) -> bytes:
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return b'"' + raw + b'"'


def multipart(parts: list[Part], boundary: bytes, *, close: bool = True) -> bytes:
    out = bytearray()
    for p in parts:
        out += b"--" + boundary + b"\r\n"
        disposition = b"Content-Disposition: form-data; name=" + _quoted(p.name)
        if p.filename is not None:
            disposition += b"; filename=" + _quoted(p.filename)
        out += disposition + b"\r\n"
        if p.content_type:
            out += b"Content-Type: " + p.content_type.encode() + b"\r\n"
        out += b"\r\n" + p.value + b"\r\n"
    if close:
        out += b"--" + boundary + b"--\r\n"
    return bytes(out)


def text_field(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, Raw):
        return value.text.encode()
    if not isinstance(value, str):
        value = encode(value)
    return value.encode("utf-8", "surrogatepass")


hostile_field = st.one_of(
    hostile_text,
    st.binary(max_size=64),
    st.sampled_from([b"\xff\xfe", b"\xc3", "9" * 5000, "1." + "9" * 5000, "0" * 64, "Z" * 64]),
)


@st.composite
def mutated_form(
    draw: st.DrawFn, fields: list[tuple[str, str]], file_part: Part | None
) -> tuple[list[Part], bytes, bool]:
    """(parts, boundary, closed): a form with one field, the file part or the framing broken."""
    parts = [Part(k, v.encode()) for k, v in fields]
    if file_part is not None:
        parts.append(
            Part(file_part.name, file_part.value, file_part.filename, file_part.content_type)
        )
    boundary = b"fuzzboundary" + secrets.token_hex(4).encode()
    closed = True
    action = draw(st.integers(0, 9))
    if action <= 2:  # one field's value
        i = position(draw, len(parts))
        parts[i] = Part(parts[i].name, text_field(draw(hostile_field)), parts[i].filename)
    elif action == 3:  # a field dropped
        del parts[position(draw, len(parts))]
    elif action == 4:  # a field sent twice
        i = position(draw, len(parts))
        parts.insert(i, Part(parts[i].name, text_field(draw(hostile_field)), parts[i].filename))
    elif action == 5:  # a field with a hostile name
        parts.insert(
            position(draw, len(parts) + 1),
            Part(draw(st.one_of(hostile_text, st.binary(max_size=30))), b"x"),
        )
    elif action == 6 and file_part is not None:  # the file part's name or bytes
        which = draw(st.integers(0, 3))
        fp = parts[-1]
        if which == 0:
            fp.filename = draw(st.one_of(hostile_text, st.binary(max_size=60)))
        elif which == 1:
            fp.value = fp.value[: position(draw, len(fp.value) + 1)]
        elif which == 2 and fp.value:
            i = position(draw, len(fp.value))
            fp.value = fp.value[:i] + bytes([draw(st.integers(0, 255))]) + fp.value[i + 1 :]
        else:
            fp.value = draw(st.binary(max_size=300))
    elif action == 7:  # framing: unclosed, or a second file part
        if draw(st.booleans()):
            closed = False
        else:
            parts.append(Part("content", b"PK\x03\x04", "second.whl"))
    elif action == 8:  # many parts
        n = draw(st.sampled_from([50, 1001, 3000]))
        parts.extend(Part(f"classifiers{i % 3}", b"x") for i in range(n))
    else:  # a field carrying deep JSON (attestations) or a huge value
        name = draw(st.sampled_from(["attestations", "description", "classifiers", "name"]))
        parts.insert(0, Part(name, text_field(draw(st.one_of(deep_value(), long_string())))))
    return parts, boundary, closed
