"""Bounded parsing of request input (pallet.core.untrusted): JSON and PEP 440 versions."""

from __future__ import annotations

import json
import random

import pytest

from pallet.core.problems import Problem
from pallet.core.untrusted import (
    LIMIT_SLUG,
    JsonLimits,
    load_json,
    parse_version,
    require_form_version,
    shorten,
)

LIMITS = JsonLimits(depth=4, string=10, number=8)


def refused(raw: str | bytes, limits: JsonLimits = LIMITS) -> str:
    with pytest.raises(Problem) as exc:
        load_json(raw, limits)
    assert exc.value.status == 400 and exc.value.slug == LIMIT_SLUG
    return exc.value.errors[0].message


def test_depth_up_to_the_limit_passes_one_more_is_refused():
    assert load_json("[[[[1]]]]", LIMITS) == [[[[1]]]]
    assert load_json('{"a":{"b":[{"c":1}]}}', LIMITS) == {"a": {"b": [{"c": 1}]}}
    assert "deeper than 4" in refused("[[[[[1]]]]]")
    assert "deeper than 4" in refused('{"a":{"b":[{"c":[1]}]}}')
    # depth, not count: many shallow containers are fine
    assert load_json("[" + ",".join(["[[1]]"] * 1000) + "]", LIMITS)[0] == [[1]]


def test_hostile_nesting_never_reaches_json_recursion():
    for raw in ("[" * 100_000, "[" * 50_000 + "]" * 50_000, '{"a":' * 50_000, "[{" * 50_000):
        refused(raw, JsonLimits())


def test_brackets_and_quotes_inside_strings_do_not_count():
    text = r'["[[[[[[", "\"[[[[[[", "\\", "{{{{{{{"]'
    assert load_json(text, JsonLimits(depth=1)) == json.loads(text)
    assert "deeper" in refused(r'["\"", [[[[[1]]]]]]')  # an escaped quote does not end it


def test_unterminated_and_invalid_text_is_a_value_error_or_refused():
    for raw in ('"abc', '["\\', "[1,", "{", "", "nul", "[1 2]", b"\xff\xfe\x00"):
        with pytest.raises((ValueError, Problem)):
            load_json(raw, LIMITS)
    with pytest.raises(ValueError):
        load_json(b'{"a": "\xff"}', LIMITS)  # not UTF-8


def test_numbers_are_bounded_before_conversion():
    assert load_json("[12345678, -1234567, 1.5e-3]", LIMITS) == [12345678, -1234567, 0.0015]
    assert "number longer" in refused("[123456789]")
    assert "number longer" in refused("[1" + "0" * 5000 + "]", JsonLimits())  # no int() error
    assert "number longer" in refused('{"a": 0.000000001}')
    assert "out of range" in refused("[1e999]")
    assert "out of range" in refused("[-1e999]")
    digits = JsonLimits(number=8)  # digits in a string are not a number
    assert load_json('["12345678901234567890"]', digits) == ["12345678901234567890"]
    assert load_json("[true, false, null]", LIMITS) == [True, False, None]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_not_json(constant: str):
    with pytest.raises(ValueError, match="not JSON"):
        load_json(f"[{constant}]", LIMITS)


def test_strings_and_keys_are_bounded():
    assert load_json('["0123456789"]', LIMITS) == ["0123456789"]
    assert "string longer" in refused('["01234567890"]')
    assert "string longer" in refused('{"01234567890": 1}')
    assert "string longer" in refused('"' + "x" * 100_000)  # unterminated, still bounded


def test_bytes_are_decoded_as_json_loads_does():
    doc = {"name": "caf\u00e9 \u2603"}
    for encoding in ("utf-8", "utf-16", "utf-32"):
        assert load_json(json.dumps(doc, ensure_ascii=False).encode(encoding)) == doc
    assert load_json(b"\xef\xbb\xbf{}") == {}  # a UTF-8 BOM, as json.loads(bytes) accepts


def _random_json(rng: random.Random, depth: int) -> object:
    kind = rng.randrange(7 if depth < 6 else 4)
    if kind == 0:
        return rng.randrange(-(10**15), 10**15)
    if kind == 1:
        return rng.random() * 10 ** rng.randrange(-20, 20)
    if kind == 2:
        alphabet = '[]{}"\\/ ab\u00e9\u2603\n\t,:0e-'
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
    if kind == 3:
        return rng.choice([True, False, None])
    if kind in (4, 5):
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {str(_random_json(rng, depth + 1)): _random_json(rng, depth + 1) for _ in range(3)}


def test_valid_json_within_bounds_parses_exactly_as_json_loads():
    rng = random.Random(694)  # noqa: S311 - reproducible test data
    limits = JsonLimits(depth=8, string=100_000, number=40)
    for _ in range(2000):
        text = json.dumps(_random_json(rng, 0), ensure_ascii=rng.random() < 0.5)
        assert load_json(text, limits) == json.loads(text)


def test_mutated_json_only_ever_raises_value_error_or_problem():
    rng = random.Random(740)  # noqa: S311 - reproducible test data
    pieces = ["[", "]", "{", "}", '"', "\\", ",", ":", "1", "e9", "-", "NaN", " ", "x"]
    for _ in range(3000):
        text = json.dumps(_random_json(rng, 0))
        for _ in range(rng.randrange(1, 5)):
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice(pieces) * rng.choice([1, 2, 50]) + text[at:]
        try:
            load_json(text, JsonLimits(depth=8))
        except (ValueError, Problem):
            pass


def test_versions_with_huge_segments_are_invalid_not_errors():
    assert parse_version("1.0.post1") is not None
    assert parse_version("banana") is None
    assert parse_version("1." + "9" * 5000) is None  # int() refuses > 4300 digits
    assert parse_version("1!" + "9" * 5000 + ".0") is None
    with pytest.raises(Problem) as exc:
        require_form_version("1." + "9" * 5000)
    assert exc.value.status == 400 and exc.value.errors[0].source == "version"
    assert len(exc.value.detail) < 200  # the message does not echo 5000 digits
    assert shorten("abc") == "'abc'"
