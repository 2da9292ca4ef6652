"""Request input parsed within bounds: every JSON body Pallet reads, and PEP 440 versions.

``json.loads`` recurses once per nesting level (10 KiB of ``[`` is a ``RecursionError``),
turns any digit string into an ``int`` (past 4300 digits a ``ValueError``, and a few hundred
digits already overflow every date and size computation) and accepts ``NaN``/``Infinity``. So
JSON from a request goes through :func:`load_json`, which scans nesting depth and string
lengths first, in linear time and without recursion, and only then parses, bounding every
number as it is read. Exceeding a bound is a ``400`` problem with the stable type
``urn:pallet:problem:json-limit-exceeded``; text that is not JSON stays a ``ValueError`` for the
caller to word.

``packaging.version.Version`` converts each release segment with ``int()``, so a 5000-digit
segment raises a plain ``ValueError``, not ``InvalidVersion``: :func:`parse_version` treats both
as "not a valid version".
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Any

from packaging.version import Version

from pallet.core.problems import Problem, ProblemError

LIMIT_SLUG = "json-limit-exceeded"


@dataclass(frozen=True)
class JsonLimits:
    depth: int = 32  #: arrays and objects nested in each other
    string: int = 16 * 1024  #: characters of one string or key, as sent (escapes count)
    number: int = 64  #: characters of one number (10**63 still fits)


#: Upload 2.0 request bodies (at most 64 KiB; the deepest PEP 694 body nests 2 levels).
UPLOAD2 = JsonLimits()
#: PEP 740 attestations (at most 4 MiB: certificates and signatures are long base64 strings).
ATTESTATIONS = JsonLimits(depth=32, string=2 * 2**20)

# A JSON string from its opening quote. It never fails to match (an unterminated string runs
# to the end of the text) and never backtracks, so scanning stays linear even for hostile text.
# Captured, so that ``split`` yields text outside strings and strings alternately.
_STRING = re.compile(r'("(?:[^"\\]+|\\[\s\S]?)*(?:"|\Z))')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


@lru_cache(maxsize=8)
def _number_longer_than(limit: int) -> re.Pattern[str]:
    return re.compile(f"[-+0-9.eE]{{{limit + 1},}}")


def limit_exceeded(message: str) -> Problem:
    return Problem(
        400,
        LIMIT_SLUG,
        "JSON limit exceeded",
        f"The JSON body is beyond what this index parses: {message}.",
        errors=[ProblemError("body", message)],
    )


def _decode(raw: bytes | bytearray | str) -> str:
    if isinstance(raw, str):
        return raw
    raw = bytes(raw)
    return raw.decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads(bytes) does


def check_structure(text: str, limits: JsonLimits) -> None:
    """Refuse strings longer than ``limits.string``, numbers longer than ``limits.number`` and
    nesting deeper than ``limits.depth``, without parsing: a few regular-expression passes.

    Strings are cut out as whole tokens first, so brackets and digits inside them do not count.
    For valid JSON every count is exact; for invalid JSON they can only err towards refusing,
    and the depth is always an upper bound of the depth ``json.loads`` reaches before it gives
    up.
    """
    parts = _STRING.split(text)
    strings = parts[1::2]
    if strings and max(map(len, strings)) - 2 > limits.string:
        raise limit_exceeded(f"a string longer than {limits.string} characters")
    outside = "".join(parts[::2]) if strings else text
    if _number_longer_than(limits.number).search(outside):
        raise limit_exceeded(f"a number longer than {limits.number} characters")
    brackets = _NOT_BRACKET.sub("", outside)
    if brackets.count("[") + brackets.count("{") <= limits.depth:
        return
    if max(accumulate(map(_STEP.__getitem__, brackets))) > limits.depth:
        raise limit_exceeded(f"arrays or objects nested deeper than {limits.depth} levels")


def _finite(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise limit_exceeded(f"{token} is out of range")
    return value


def _not_json(token: str) -> None:
    raise ValueError(f"{token} is not JSON")


def load_json(raw: bytes | bytearray | str, limits: JsonLimits = UPLOAD2) -> Any:
    """``json.loads`` within ``limits``: a ``Problem`` when a bound is exceeded, ``ValueError``
    (``UnicodeDecodeError`` included) when the text is not JSON."""
    text = _decode(raw)
    check_structure(text, limits)
    return json.loads(text, parse_float=_finite, parse_constant=_not_json)


def parse_version(text: str) -> Version | None:
    """A PEP 440 version, or None if ``text`` is not one (however long its segments)."""
    try:
        return Version(text)
    except ValueError:  # InvalidVersion, and int() beyond sys.get_int_max_str_digits()
        return None


def shorten(text: str, limit: int = 80) -> str:
    """``repr`` of request text for a message, cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"… ({len(text)} characters)"


def require_form_version(text: str) -> Version:
    """The legacy form's (and ``/direct/``'s) ``version`` field, refused up front when it is not
    a version at all, before any later comparison could trip over it."""
    version = parse_version(text)
    if version is None:
        detail = f"{shorten(text)} is not a valid version."
        raise Problem(
            400,
            "invalid-form",
            "Invalid upload form",
            detail,
            errors=[ProblemError("version", detail)],
        )
    return version
