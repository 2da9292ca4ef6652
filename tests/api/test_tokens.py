"""Tokens: stored only as an HMAC, verified in constant time, scoped, expiring, revocable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from pallet.auth.tokens import create_token, verify_token
from pallet.db.models import Token
from pallet.db.session import read_session, write_session


def test_token_lifecycle(index):
    engine = index.services.engine
    key = index.services.settings.secret_key
    with write_session(engine) as s:
        row, token = create_token(s, key, scope="upload", projects=["Foo_Bar"])
    with read_session(engine) as s:
        stored = s.execute(select(Token)).scalar_one()
        assert token.split("_")[-1] not in stored.secret_hash  # only a hash is stored
        assert stored.projects == ["foo-bar"]
        principal = verify_token(s, key, token)
        assert principal is not None
        assert principal.can_upload("foo.bar") and not principal.can_upload("other")
        assert verify_token(s, key, token + "x") is None
        assert verify_token(s, "another-server-key", token) is None
        assert verify_token(s, key, "pallet_0000000000000000_nope") is None
        assert verify_token(s, key, "not-a-pallet-token") is None
    with write_session(engine) as s:
        s.get(Token, row.id).revoked = datetime.now(UTC)
    with read_session(engine) as s:
        revoked = verify_token(s, key, token)
        assert revoked is not None and revoked.inactive_reason == "revoked"
        assert not revoked.can_upload("foo-bar") and not revoked.can_read("foo-bar")


def test_expired_token_is_refused(index):
    engine = index.services.engine
    key = index.services.settings.secret_key
    with write_session(engine) as s:
        _row, token = create_token(s, key, expires_in=timedelta(seconds=-1))
    with read_session(engine) as s:
        expired = verify_token(s, key, token)
        assert expired is not None and expired.inactive_reason == "expired"
        assert not expired.can_upload("x")


def test_revoked_token_stops_uploads_at_once(index, tmp_path):
    from tests.api.uploads import upload
    from tests.dists import make_wheel

    token = index.token()
    wheel = make_wheel(tmp_path, "rev", "1.0")
    assert upload(index.client, wheel, token, name="rev", version="1.0").status_code == 200
    token_id = token.split("_")[1]
    with write_session(index.services.engine) as s:
        s.get(Token, token_id).revoked = datetime.now(UTC)
    wheel2 = make_wheel(tmp_path, "rev", "2.0")
    r = upload(index.client, wheel2, token, name="rev", version="2.0")
    assert r.status_code == 403
    assert r.json()["type"] == "urn:pallet:problem:token-inactive"
