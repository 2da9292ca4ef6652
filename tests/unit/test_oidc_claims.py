"""The claim rules of trusted publishers (pure): what PyPI checks, claim by claim."""

from __future__ import annotations

import pytest

from pallet.auth.oidc import claims as rules
from tests.oidc import github_claims, gitlab_claims

ISSUER = "https://gitlab.example.com"


def github(**kw):  # noqa: ANN003, ANN201
    return rules.github_rules("Acme/Widgets", "release.yml", **kw)


def test_github_matches_case_insensitively_and_at_its_own_ref_or_sha():
    claims = github_claims("acme/widgets")
    assert rules.mismatches(rules.GITHUB, rules.GITHUB_ISSUER, github(), claims) == []
    at_sha = {
        **claims,
        "job_workflow_ref": claims["job_workflow_ref"].split("@")[0] + "@" + claims["sha"],
    }
    assert rules.mismatches(rules.GITHUB, rules.GITHUB_ISSUER, github(), at_sha) == []
    # A workflow file of another ref than the token's own (a reusable workflow elsewhere).
    elsewhere = {
        **claims,
        "job_workflow_ref": "acme/widgets/.github/workflows/release.yml@refs/heads/x",
    }
    assert rules.mismatches(rules.GITHUB, rules.GITHUB_ISSUER, github(), elsewhere) == [
        "job_workflow_ref"
    ]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"repository": "acme/gadgets"}, ["repository"]),
        ({"repository_owner": "mallory"}, ["repository_owner"]),
        ({"event_name": "pull_request_target"}, ["event_name"]),
        ({"repository_owner_id": None}, ["repository_owner_id"]),  # missing: named alone
    ],
)
def test_github_names_what_broke(change, named):  # noqa: ANN001
    claims = {**github_claims("acme/widgets"), **change}
    claims = {k: v for k, v in claims.items() if v is not None}
    assert rules.mismatches(rules.GITHUB, rules.GITHUB_ISSUER, github(), claims) == named


def test_github_environment_and_owner_id():
    with_env = github(environment="PyPI", owner_id="4242")
    ok = github_claims("acme/widgets", environment="pypi")
    assert rules.mismatches(rules.GITHUB, rules.GITHUB_ISSUER, with_env, ok) == []
    none = github_claims("acme/widgets")
    assert rules.mismatches(rules.GITHUB, rules.GITHUB_ISSUER, with_env, none) == ["environment"]
    other = github_claims("acme/widgets", environment="pypi", owner_id="1")
    assert rules.mismatches(rules.GITHUB, rules.GITHUB_ISSUER, with_env, other) == [
        "repository_owner_id"
    ]


def test_gitlab():
    rule = rules.gitlab_rules("Group/Sub/Proj", ".gitlab-ci.yml", "prod")
    ok = gitlab_claims("group/sub/proj", host="gitlab.example.com", environment="prod")
    assert rules.mismatches(rules.GITLAB, ISSUER, rule, ok) == []
    assert rules.mismatches(rules.GITLAB, ISSUER, rule, {**ok, "environment": "Prod"}) == [
        "environment"
    ]
    other_host = gitlab_claims("group/sub/proj", host="gitlab.com", environment="prod")
    assert rules.mismatches(rules.GITLAB, ISSUER, rule, other_host) == ["ci_config_ref_uri"]
    assert rules.mismatches(
        rules.GITLAB, ISSUER, rule, {**ok, "sub": "project_path:group/x:ref"}
    ) == ["sub"]


def test_generic_rules_are_exact():
    rule = rules.generic_rules({"sub": "a", "branch": "main"})
    assert rules.mismatches(rules.GENERIC, ISSUER, rule, {"sub": "a", "branch": "main"}) == []
    assert rules.mismatches(rules.GENERIC, ISSUER, rule, {"sub": "a", "branch": "Main"}) == [
        "branch"
    ]
    with pytest.raises(rules.RuleError, match="sub"):
        rules.generic_rules({"branch": "main"})


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: rules.github_rules("acme", "release.yml"), "OWNER/NAME"),
        (lambda: rules.github_rules("acme/a/b", "release.yml"), "OWNER/REPO"),
        (lambda: rules.github_rules("acme/w", ".github/workflows/release.yml"), "file name"),
        (lambda: rules.gitlab_rules("acme/w", "/ci.yml"), "pipeline file"),
    ],
)
def test_settings_that_can_never_match_are_refused(build, message):  # noqa: ANN001
    with pytest.raises(rules.RuleError, match=message):
        build()


def test_identity_and_publisher():
    assert rules.identity(rules.GITHUB, github(environment="pypi")) == (
        "github:acme/widgets/.github/workflows/release.yml environment=pypi"
    )
    claims = github_claims("acme/widgets")
    assert rules.publisher(rules.GITHUB, rules.GITHUB_ISSUER, github(), claims) == {
        "kind": "GitHub", "repository": "acme/widgets", "workflow": "release.yml", "environment": None,
    }  # fmt: skip


def test_a_non_string_environment_is_no_environment():
    claims = {**github_claims("acme/widgets"), "environment": 7}
    assert (
        rules.publisher(rules.GITHUB, rules.GITHUB_ISSUER, github(), claims)["environment"] is None
    )
