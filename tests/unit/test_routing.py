"""Routing on the name alone: the order of the rules, and claims as PEP 752 namespaces."""

from __future__ import annotations

import pytest

from pallet.core.routing import Claim, Policy, Source, route

UP = Policy(upstreams=("pypi", "mirror"))


def claims(*texts: str) -> list[Claim]:
    return [Claim.parse(t) for t in texts]


@pytest.mark.parametrize(
    ("text", "pattern", "prefix"),
    [
        ("Acme_Utils", "acme-utils", False),
        ("acme-*", "acme", True),
        ("ACME.*", "acme", True),
        ("acme_corp_*", "acme-corp", True),
        (" acme ", "acme", False),
    ],
)
def test_claims_are_normalised(text: str, pattern: str, prefix: bool) -> None:
    assert Claim.parse(text) == Claim(pattern, prefix)


@pytest.mark.parametrize(
    "text", ["", "*", "acme*", "-acme", "acme-", "a*b-*", "ac me", "acmé", "a/b"]
)
def test_what_is_not_a_name_or_a_namespace_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Claim.parse(text)


def test_a_namespace_covers_itself_and_its_hyphenated_children_only() -> None:
    acme = Claim.parse("acme-*")
    assert acme.covers("acme") and acme.covers("acme-utils") and acme.covers("acme-a-b")
    assert not acme.covers("acmecorp") and not acme.covers("notacme-x")
    exact = Claim.parse("acme-utils")
    assert exact.covers("acme-utils") and not exact.covers("acme-utils-extra")
    assert str(acme) == "acme-*" and str(exact) == "acme-utils"


def test_a_project_here_is_served_from_here_whatever_else_holds() -> None:
    r = route("acme-utils", exists_here=True, claims=[], policy=UP)
    assert r.source is Source.HERE and not r.goes_upstream


def test_a_claim_keeps_a_name_from_every_upstream() -> None:
    r = route("acme-new", exists_here=False, claims=claims("acme-*"), policy=UP)
    assert r.source is Source.NOWHERE and "acme-*" in r.reason and r.upstreams == ()


def test_deny_and_allow_lists() -> None:
    policy = Policy(
        upstreams=("pypi",),
        deny=tuple(claims("evil-*")),
        allow=tuple(claims("requests", "django-*")),
    )
    assert route("evil-x", exists_here=False, claims=[], policy=policy).source is Source.NOWHERE
    assert route("flask", exists_here=False, claims=[], policy=policy).source is Source.NOWHERE
    assert route("django-rest", exists_here=False, claims=[], policy=policy).goes_upstream
    assert route("requests", exists_here=False, claims=[], policy=policy).goes_upstream


def test_no_upstream_means_nothing_goes_upstream() -> None:
    assert route("flask", exists_here=False, claims=[], policy=Policy()).source is Source.NOWHERE


def test_unclaimed_names_go_to_the_upstreams_in_order() -> None:
    r = route("flask", exists_here=False, claims=claims("acme-*"), policy=UP)
    assert r.goes_upstream and r.upstreams == ("pypi", "mirror")
