"""Upstream configuration: names, URLs, and where credentials may go."""

from __future__ import annotations

import pytest

from pallet.proxy.upstreams import parse_upstreams


def test_named_and_unnamed_upstreams_in_order() -> None:
    ups = parse_upstreams("pypi=https://pypi.example/simple, https://mirror.example/simple/", {})
    assert [(u.name, u.url) for u in ups] == [
        ("pypi", "https://pypi.example/simple/"),
        ("upstream2", "https://mirror.example/simple/"),
    ]
    assert ups[0].page_url("demo") == "https://pypi.example/simple/demo/"


def test_credentials_come_from_the_environment_and_stay_on_the_upstreams_origin() -> None:
    env = {"PALLET_UPSTREAM_CORP_TOKEN": "s3cret"}
    (up,) = parse_upstreams("corp=https://corp.example/simple/", env)
    assert up.headers == {"Authorization": "Bearer s3cret"}
    assert "s3cret" not in repr(up)  # never in a log line that prints the upstream
    assert up.headers_for("https://corp.example/files/x.whl") == up.headers
    assert up.headers_for("https://files.example/x.whl") == {}
    assert up.headers_for("http://corp.example/files/x.whl") == {}  # not downgraded to http
    (basic,) = parse_upstreams("b=https://b.example/", {"PALLET_UPSTREAM_B_USERNAME": "u",
                                                        "PALLET_UPSTREAM_B_PASSWORD": "p"})  # fmt: skip
    assert basic.headers["Authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    "spec",
    [
        "https://user:pw@corp.example/simple/",  # credentials in the URL: refused
        "ftp://corp.example/simple/",
        "corp=/relative/",
        "a=https://a.example/ a=https://b.example/",
        "bad-name=https://a.example/",  # names are letters, digits and _
    ],
)
def test_bad_upstreams_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_upstreams(spec, {})
