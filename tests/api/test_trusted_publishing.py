"""Trusted publishing through the real app: a token from a (stand-in) CI issuer is exchanged for
a short-lived upload token, and every way a token can be wrong is refused with a clear 422."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pallet.auth.oidc import claims as rules
from pallet.auth.oidc import publishers
from pallet.auth.oidc.keys import IssuerKeys
from pallet.db.models import Token, TrustedPublisher, UsedOidcToken
from pallet.db.session import read_session, write_session
from pallet.gc import sweep
from tests.api.uploads import upload
from tests.dists import make_wheel
from tests.oidc import Issuer, github_claims, gitlab_claims


@pytest.fixture(scope="module")
def issuer():  # noqa: ANN201
    stand_in = Issuer().start()
    yield stand_in
    stand_in.stop()


def add_github(index, issuer, project="widgets", **kw):  # noqa: ANN001, ANN003, ANN201
    rule = rules.github_rules(
        kw.pop("repository", "acme/widgets"), kw.pop("workflow", "release.yml"), **kw
    )
    with write_session(index.services.engine) as s:
        row, _ = publishers.add(s, project, rules.GITHUB, issuer.issuer, rule)
        return row.id


def mint(index, token: str):  # noqa: ANN001, ANN201
    return index.client.post("/_/oidc/mint-token", json={"token": token})


def refused(response, code: str) -> str:  # noqa: ANN001
    """The description of a PyPI-shaped refusal (also an RFC 9457 problem)."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["message"] == "Token request failed"
    assert body["type"] == f"urn:pallet:problem:oidc-{code}"
    [error] = body["errors"]
    assert error["code"] == code
    return error["description"]


def test_audience(index):  # noqa: ANN001
    assert index.client.get("/_/oidc/audience").json() == {"audience": "pallet"}


def test_a_matching_token_mints_an_upload_token_for_its_project_only(index, issuer, tmp_path):  # noqa: ANN001
    add_github(index, issuer, environment="release")
    oidc = issuer.sign(github_claims(environment="Release"))  # GitHub's environments ignore case
    before = time.time()
    r = mint(index, oidc)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["token"].startswith("pallet_")
    assert before + 900 - 5 <= body["expires"] <= time.time() + 900 + 5  # 15 minutes
    assert r.headers["cache-control"] == "no-store"
    token = body["token"]

    wheel = make_wheel(tmp_path, "widgets", "1.0")
    assert upload(index.client, wheel, token, name="widgets", version="1.0").status_code == 200
    other = make_wheel(tmp_path, "gadgets", "1.0")
    r = upload(index.client, other, token, name="gadgets", version="1.0")
    assert r.status_code == 403, r.text  # a token for another project

    with read_session(index.services.engine) as s:
        row = s.get(Token, body["token"].split("_")[1])
        assert row.scope == "upload" and row.projects == ["widgets"]
        assert row.publisher == {
            "kind": "GitHub",
            "repository": "acme/widgets",
            "workflow": "release.yml",
            "environment": "Release",
        }
        # The owner's id is pinned by the first exchange: a re-registered owner name differs.
        [publisher] = s.query(TrustedPublisher).all()
        assert publisher.rules["owner_id"] == "4242" and publisher.pending is False
    r = mint(index, issuer.sign(github_claims(environment="release", owner_id="666")))
    assert "repository_owner_id" in refused(r, "invalid-publisher")


@pytest.mark.parametrize(
    ("claims", "broken"),
    [
        (github_claims(repository="mallory/widgets"), "repository"),
        (github_claims(workflow="other.yml"), "job_workflow_ref"),
        (github_claims(environment="staging"), "environment"),
        (github_claims(environment="release", event_name="pull_request_target"), "event_name"),
    ],
)
def test_claims_that_do_not_match_are_named(index, issuer, claims, broken):  # noqa: ANN001
    add_github(index, issuer, environment="release")
    oidc = issuer.sign(claims)
    r = mint(index, oidc)
    description = refused(r, "invalid-publisher")
    assert broken in description
    assert oidc not in r.text and oidc.split(".")[1] not in r.text  # never echoed


def test_tokens_refused_before_any_claim_is_matched(index, issuer):  # noqa: ANN001
    add_github(index, issuer)
    good = github_claims()
    now = time.time()
    cases = {
        "expired": issuer.sign(good, issued=now - 3600, lifetime=600),
        "not valid yet": issuer.sign(good, issued=now + 600),
        "audience": issuer.sign(good, audience="pypi"),
        "no audience": issuer.sign(good, audience=None),
    }
    expected = {
        "expired": "expired",
        "not valid yet": "not valid yet",
        "audience": "audience",
        "no audience": "'aud'",
    }
    for case, oidc in cases.items():
        assert expected[case] in refused(mint(index, oidc), "invalid-token"), case

    header, payload, signature = issuer.sign(good).split(".")
    tampered_payload = issuer.sign({**good, "repository": "acme/widgets2"}).split(".")[1]
    r = mint(index, f"{header}.{tampered_payload}.{signature}")
    assert "signature" in refused(r, "invalid-token")

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert "signature" in refused(mint(index, issuer.sign(good, key=stranger)), "invalid-token")
    # HMAC keyed with nothing secret, and no signature at all, are never accepted.
    forged = jwt.encode({"iss": issuer.issuer, **good}, "k" * 32, algorithm="HS256")
    assert "algorithm" in refused(mint(index, forged), "invalid-token")
    unsigned = jwt.encode({"iss": issuer.issuer, **good}, None, algorithm="none")
    assert "algorithm" in refused(mint(index, unsigned), "invalid-token")

    # Hostile shapes: a jti wider than its column, a lifetime the replay table would have to
    # outlive, a payload nested past the JSON parser's recursion: 422s, never 500s.
    assert "jti" in refused(mint(index, issuer.sign({**good, "jti": "j" * 201})), "invalid-token")
    assert "more than a day" in refused(
        mint(index, issuer.sign(good, lifetime=10**12)), "invalid-token"
    )
    nested = "e30." + base64.urlsafe_b64encode(b"[" * 9000).decode().rstrip("=") + ".c2ln"
    assert "malformed" in refused(mint(index, nested), "invalid-payload")

    r = mint(index, issuer.sign(good, issuer="https://issuer.invalid"))
    assert "unknown trusted publishing issuer" in refused(r, "invalid-payload")
    for body in ({"token": 42}, {}, ["x"]):
        assert refused(index.client.post("/_/oidc/mint-token", json=body), "invalid-payload")
    assert refused(index.client.post("/_/oidc/mint-token", content=b"{"), "invalid-payload")
    assert refused(mint(index, "not.a.jwt"), "invalid-payload")


def test_no_content_type_is_fine_and_a_replayed_jti_is_refused_by_every_replica(make_index, issuer):  # noqa: ANN001
    first, second = make_index(), make_index()  # two replicas of one database
    assert first.services.settings.database_url == second.services.settings.database_url
    add_github(first, issuer)
    oidc = issuer.sign(github_claims())
    # uv before 0.10.10 sent the JSON with no Content-Type.
    r = first.client.post("/_/oidc/mint-token", content=f'{{"token": "{oidc}"}}'.encode())
    assert r.status_code == 200, r.text
    assert "already used" in refused(mint(first, oidc), "invalid-reuse-token")
    assert "already used" in refused(mint(second, oidc), "invalid-reuse-token")


def test_spent_ids_are_forgotten_once_their_token_has_expired(index, issuer):  # noqa: ANN001
    add_github(index, issuer)
    assert mint(index, issuer.sign(github_claims())).status_code == 200
    with write_session(index.services.engine) as s:
        s.add(UsedOidcToken(issuer="x", jti="old", expires_at=datetime.now(UTC) - timedelta(1)))
    assert sweep(index.services)["oidc_ids_forgotten"] == 1
    with read_session(index.services.engine) as s:
        assert [u.jti for u in s.query(UsedOidcToken)] != ["old"]
        assert s.query(UsedOidcToken).count() == 1  # the live one stays


def test_gitlab_and_generic_publishers(index, issuer, tmp_path):  # noqa: ANN001
    host = issuer.issuer.removeprefix("http://")
    with write_session(index.services.engine) as s:
        rule = rules.gitlab_rules("acme/widgets", "ci/release.yml", "prod")
        publishers.add(s, "widgets", rules.GITLAB, issuer.issuer, rule)
        rule = rules.generic_rules({"sub": "pipeline:acme/gadgets", "branch": "main"})
        publishers.add(s, "gadgets", rules.GENERIC, issuer.issuer, rule)
    ok = gitlab_claims("acme/widgets", "ci/release.yml", host=host, environment="prod")
    r = mint(index, issuer.sign(ok))
    assert r.status_code == 200, r.text
    with read_session(index.services.engine) as s:
        assert s.get(Token, r.json()["token"].split("_")[1]).projects == ["widgets"]
    # GitLab's environments are case-sensitive; the pipeline file must be the one configured.
    r = mint(index, issuer.sign({**ok, "environment": "Prod"}))
    assert "environment" in refused(r, "invalid-publisher")
    wrong = gitlab_claims("acme/widgets", ".gitlab-ci.yml", host=host, environment="prod")
    assert "ci_config_ref_uri" in refused(mint(index, issuer.sign(wrong)), "invalid-publisher")

    r = mint(index, issuer.sign({"sub": "pipeline:acme/gadgets", "branch": "main"}))
    assert r.status_code == 200, r.text
    gadget = make_wheel(tmp_path, "gadgets", "1.0")
    assert upload(index.client, gadget, r.json()["token"], name="gadgets", version="1.0").is_success
    r = mint(index, issuer.sign({"sub": "pipeline:acme/gadgets", "branch": "dev"}))
    assert "branch" in refused(r, "invalid-publisher")


def test_a_pending_publisher_claims_a_new_name_unless_someone_else_took_it(index, issuer, tmp_path):  # noqa: ANN001
    add_github(index, issuer, project="brand-new")
    add_github(index, issuer, project="taken", repository="acme/other")
    with read_session(index.services.engine) as s:
        assert all(p.pending for p in s.query(TrustedPublisher))
    taken = make_wheel(tmp_path, "taken", "1.0")
    assert upload(index.client, taken, index.token(), name="taken", version="1.0").is_success

    r = mint(index, issuer.sign(github_claims()))
    assert r.status_code == 200, r.text
    wheel = make_wheel(tmp_path, "brand_new", "1.0")
    token = r.json()["token"]
    assert upload(index.client, wheel, token, name="brand-new", version="1.0").is_success

    r = mint(index, issuer.sign(github_claims(repository="acme/other")))
    assert "already exists" in refused(r, "invalid-pending-publisher")


def test_keys_are_refetched_for_an_unknown_kid_at_most_once_a_minute(index, issuer):  # noqa: ANN001
    add_github(index, issuer)
    clock = [1000.0]
    index.services._issuer_keys = IssuerKeys(clock=lambda: clock[0])
    assert mint(index, issuer.sign(github_claims())).status_code == 200
    fetched = issuer.requests.count("/jwks")
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    old_key, old_kid = issuer.key, issuer.kid
    issuer.key, issuer.kid = rotated, "rotated"
    try:
        oidc = issuer.sign(github_claims())
        assert "'rotated'" in refused(mint(index, oidc), "invalid-token")
        assert issuer.requests.count("/jwks") == fetched  # fetched a moment ago: not again
        clock[0] += 61
        assert mint(index, oidc).status_code == 200
        assert issuer.requests.count("/jwks") == fetched + 1
    finally:
        issuer.key, issuer.kid = old_key, old_kid


def test_a_minted_token_can_be_burnt_and_only_a_minted_one(index, issuer, tmp_path):  # noqa: ANN001
    add_github(index, issuer)
    token = mint(index, issuer.sign(github_claims())).json()["token"]
    r = index.client.post("/_/oidc/burn-token", json={"token": token})
    assert r.status_code == 202, r.text
    wheel = make_wheel(tmp_path, "widgets", "1.0")
    r = upload(index.client, wheel, token, name="widgets", version="1.0")
    assert r.status_code == 403 and "revoked" in r.text
    r = index.client.post("/_/oidc/burn-token", json={"token": index.token()})
    assert "minted" in refused(r, "invalid-token")
    assert refused(index.client.post("/_/oidc/burn-token", json={"token": "x"}), "invalid-token")


def test_keys_pinned_from_a_file_are_never_fetched(make_index, issuer, tmp_path):  # noqa: ANN001
    import json

    pinned = tmp_path / "jwks.json"
    pinned.write_text(json.dumps(issuer.jwks()))
    index = make_index(oidc_jwks=f"{issuer.issuer}={pinned}")
    add_github(index, issuer)
    before = list(issuer.requests)
    assert mint(index, issuer.sign(github_claims())).status_code == 200
    assert issuer.requests == before
