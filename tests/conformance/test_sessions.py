"""Publishing sessions over HTTP: creation, joining, status, extend, cancel, negotiation,
authorization. Test names cite the PEP 694 requirement they check."""

from __future__ import annotations

import json
import re

import httpx

from tests.conformance.conftest import META, V2, Release, Target, pallet_only, post_json

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def assert_problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["type"] and body["title"]
    assert body["meta"] == META
    return body


def test_must_create_returns_201_location_and_session_body(release: Release):
    r = release.open()
    assert r.status_code == 201
    assert r.headers["content-type"].startswith(V2)
    body = r.json()
    assert r.headers["location"] == body["links"]["session"]
    assert body["meta"] == META
    assert set(body["links"]) >= {"session", "upload", "publish"}
    assert "http-post-bytes" in body["mechanisms"]
    assert body["status"] == "open"
    assert body["files"] == {}
    assert RFC3339_Z.match(body["expires-at"])
    # previews supported => token and stage link both present
    assert ("stage" in body["links"]) == ("session-token" in body)


def test_must_second_create_is_409_with_location_of_existing(release: Release):
    assert release.open().status_code == 201
    again = post_json(
        release.client,
        release.target.upload_url,
        {"name": release.name.upper(), "version": "1.0.0"},
    )
    assert_problem(again, 409)
    assert again.headers["location"] == release.session["links"]["session"]


def test_must_403_wins_over_409_for_unauthorized_caller(release: Release, target: Target):
    assert release.open().status_code == 201
    other = target.client(target.new_token("--project", "somebody-else"))
    r = post_json(other, target.upload_url, {"name": release.name, "version": "1.0"})
    assert_problem(r, 403)
    assert "location" not in r.headers


def test_must_new_session_after_terminal_gets_new_urls(release: Release):
    assert release.open().status_code == 201
    first = release.session
    assert release.client.delete(first["links"]["session"]).status_code == 204
    assert release.open().status_code == 201
    second = release.session
    assert second["links"]["session"] != first["links"]["session"]
    assert second["session-token"] != first["session-token"]
    assert second["links"]["stage"] != first["links"]["stage"]


def test_status_get_returns_session_body(release: Release):
    release.open()
    body = release.status()
    assert body["status"] == "open" and body["links"] == release.session["links"]


def test_extend_never_shortens_and_returns_body(release: Release):
    release.open()
    before = release.session["expires-at"]
    r = post_json(release.client, release.session["links"]["extend"], {"extend-for": 3600})
    assert r.status_code == 200
    after = r.json()["expires-at"]
    assert after >= before
    huge = post_json(release.client, release.session["links"]["extend"], {"extend-for": 10**9})
    assert huge.status_code == 200  # MUST still succeed, granting only what policy allows
    assert huge.json()["expires-at"] >= after
    bad = post_json(release.client, release.session["links"]["extend"], {"extend-for": "x"})
    assert_problem(bad, 400)


def test_cancel_is_204_then_status_canceled_and_actions_409(release: Release):
    release.open()
    links = release.session["links"]
    assert release.client.delete(links["session"]).status_code == 204
    assert release.status()["status"] == "canceled"
    assert_problem(post_json(release.client, links["publish"]), 409)
    assert_problem(release.start_file(release.wheel()), 409)
    assert_problem(release.client.delete(links["session"]), 409)


def test_wrong_media_type_is_415(target: Target, release: Release):
    r = release.client.post(
        target.upload_url,
        content=json.dumps({"meta": META, "name": release.name, "version": "1.0"}),
        headers={"Content-Type": "application/json"},
    )
    assert_problem(r, 415)


def test_api_version_major_must_match_media_type(target: Target, release: Release):
    r = release.client.post(
        target.upload_url,
        content=json.dumps(
            {"meta": {"api-version": "3.0"}, "name": release.name, "version": "1.0"}
        ),
        headers={"Content-Type": V2},
    )
    body = assert_problem(r, 400)
    assert body["errors"][0]["source"] == "meta.api-version"
    missing = release.client.post(
        target.upload_url,
        content=json.dumps({"name": release.name, "version": "1.0"}),
        headers={"Content-Type": V2},
    )
    assert_problem(missing, 400)


def test_unacceptable_accept_is_406(target: Target, release: Release):
    r = release.client.post(
        target.upload_url,
        content=json.dumps({"meta": META, "name": release.name, "version": "1.0"}),
        headers={"Content-Type": V2, "Accept": "text/html"},
    )
    assert_problem(r, 406)


def test_malformed_and_oversized_bodies_are_4xx(target: Target, release: Release):
    for raw in (b"{", b"[]", b"\xff\xfe", json.dumps({"meta": META}).encode()):
        r = release.client.post(target.upload_url, content=raw, headers={"Content-Type": V2})
        assert_problem(r, 400)
    big = json.dumps({"meta": META, "name": release.name, "version": "1.0", "pad": "x" * 200_000})
    r = release.client.post(target.upload_url, content=big, headers={"Content-Type": V2})
    assert r.status_code == 413
    bad = post_json(release.client, target.upload_url, {"name": "-bad-", "version": "nope"})
    body = assert_problem(bad, 400)
    assert {e["source"] for e in body["errors"]} == {"name", "version"}


def test_must_401_with_challenge_without_credentials(target: Target, release: Release):
    anon = target.client(token="")
    r = post_json(anon, target.upload_url, {"name": release.name, "version": "1.0"})
    assert_problem(r, 401)
    assert "www-authenticate" in r.headers


def test_must_authorize_every_request_revoked_token_403_even_for_creator(
    target: Target, release: Release
):
    pallet_only(target)
    token = target.new_token("--project", release.name)
    mine = target.client(token)
    r = post_json(mine, target.upload_url, {"name": release.name, "version": "1.0"})
    assert r.status_code == 201
    session_url = r.json()["links"]["session"]
    token_id = token.split("_")[1]
    assert target.server is not None
    assert target.server.cli("token", "revoke", token_id).returncode == 0
    assert_problem(mine.get(session_url), 403)
    # sessions are not bound to credentials: another authorized principal carries on
    assert release.client.get(session_url).json()["status"] == "open"


def test_unknown_session_is_404(target: Target, release: Release):
    release.open()
    url = release.session["links"]["session"].replace(
        release.session["links"]["session"].rstrip("/").rsplit("/", 1)[1], "0" * 32
    )
    assert_problem(release.client.get(url), 404)
