"""Tokens: stored only as an HMAC, verified in constant time, scoped, expiring, revocable."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from pallet.auth.tokens import create_token, verify_token
from pallet.cli import main
from pallet.db.models import Token
from pallet.db.session import read_session, write_session

V2 = "application/vnd.pypi.upload.v2+json"


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


def _secret(token: str) -> str:
    return token.split("_", 2)[2]


def test_unknown_token_is_named_in_the_401_never_its_secret(index, tmp_path, no_pallet_env, capsys):
    """A well-formed token minted against another data dir: the 401 says so, by id only."""
    from tests.api.uploads import upload
    from tests.dists import make_wheel

    here = index
    assert _cli("token", "create", "--init", "--data-dir", str(tmp_path / "elsewhere")) == (0, "")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    token_id = token.split("_")[1]
    wheel = make_wheel(tmp_path, "stray", "1.0")
    r = upload(here.client, wheel, token, name="stray", version="1.0")
    assert r.status_code == 401
    problem = r.json()
    assert problem["type"] == "urn:pallet:problem:unauthorized"
    assert problem["detail"] == (
        f"Token {token_id} is not known to this index "
        "(was it created against another data dir or database?)."
    )
    assert r.headers["www-authenticate"].startswith("Basic")
    assert _secret(token) not in r.text and _secret(token) not in str(r.headers)

    # Upload 2.0 and private reads share the guard.
    v2 = here.client.post(
        "/upload/2.0/",
        headers={"Authorization": f"Bearer {token}", "Content-Type": V2, "Accept": V2},
        content=b'{"meta": {"api-version": "2.0"}, "name": "stray", "version": "1.0"}',
    )
    assert v2.status_code == 401
    assert v2.json()["detail"] == problem["detail"]


def test_known_token_with_a_wrong_secret_is_not_called_unknown(make_index, tmp_path):
    from tests.api.uploads import upload
    from tests.dists import make_wheel

    index = make_index()
    token = index.token()
    token_id = token.split("_")[1]
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    # The same database behind a server with another data dir, hence another secret key.
    other_key = make_index()
    assert other_key.services.settings.secret_key != index.services.settings.secret_key
    wheel = make_wheel(tmp_path, "stray", "1.0")
    for client, presented in ((index.client, wrong), (other_key.client, token)):
        r = upload(client, wheel, presented, name="stray", version="1.0")
        assert r.status_code == 401
        assert r.json()["detail"] == (
            f"The secret of token {token_id} does not match (is it complete, and was it "
            "created with this index's secret key?)."
        )
        assert _secret(presented) not in r.text and _secret(token) not in r.text


@pytest.mark.parametrize(
    "bad", ["not-a-pallet-token", "pallet_XYZ_secret", "pallet_0123456789ABCDEF_secret"]
)
def test_malformed_token_gets_the_generic_401(index, tmp_path, bad):
    from tests.api.uploads import upload
    from tests.dists import make_wheel

    wheel = make_wheel(tmp_path, "stray", "1.0")
    r = upload(index.client, wheel, bad, name="stray", version="1.0")
    assert r.status_code == 401
    assert r.json()["detail"] == "The token is not valid for this index."
    assert "secret" not in r.text.replace("secret of", "")


# ``pallet token`` against a data dir or database URL that holds no index.


@pytest.fixture
def no_pallet_env(monkeypatch):  # noqa: ANN001, ANN201
    """No PALLET_* setting of the machine reaches the CLI (the suite's own PALLET_TEST_* stay)."""
    for key in [k for k in os.environ if k.startswith("PALLET_") and "_TEST_" not in k]:
        monkeypatch.delenv(key)


def _cli(*argv: str) -> tuple[int, str]:
    """Run ``pallet ARGV`` in-process: (exit code, the error line of a refusal or '')."""
    try:
        return main(list(argv)), ""
    except SystemExit as exc:
        if isinstance(exc.code, str):
            return 1, exc.code
        return int(exc.code or 0), ""


def test_token_commands_refuse_a_missing_database(no_pallet_env, database_url, tmp_path, capsys):
    """``database_url`` is a fresh SQLite path or a fresh, unmigrated PostgreSQL database."""
    data = tmp_path / "typo"
    where = ["--data-dir", str(data), "--database-url", database_url]
    for argv in (
        ["token", "create", *where],
        ["token", "list", *where],
        ["token", "revoke", "0123456789abcdef", *where],
        ["yank", "anything", "1.0", *where],
    ):
        code, error = _cli(*argv)
        assert code == 1, argv
        assert error.startswith("error: ") and "\n" not in error, error
        assert "no Pallet database" in error or "holds no Pallet schema" in error, error
        assert "--data-dir" in error
        assert ("--init" in error) == (argv[1] == "create"), error
        assert not data.exists(), "a refusal must create nothing"
        assert "pallet_" not in capsys.readouterr().out
    if database_url.startswith("sqlite"):
        assert not (tmp_path / "pallet.db").exists()
    else:
        from sqlalchemy import create_engine, inspect

        engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
        engine.dispose()

    # --init creates and migrates it, as before.
    assert _cli("token", "create", "--init", *where) == (0, "")
    created = capsys.readouterr().out.strip().splitlines()
    token_id = created[-1].split("_")[1]
    assert (data / "secret-key").is_file()
    assert _cli("token", "list", *where) == (0, "")
    assert token_id in capsys.readouterr().out
    assert _cli("token", "create", *where) == (0, "")  # now it exists: no --init needed
    assert _cli("token", "revoke", token_id, *where) == (0, "")


def test_token_create_refuses_an_unmigrated_sqlite_file(no_pallet_env, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    sqlite3.connect(data / "pallet.db").close()  # an empty database, never migrated
    code, error = _cli("token", "create", "--data-dir", str(data))
    assert code == 1
    assert error == (
        f"error: the database {data / 'pallet.db'} holds no Pallet schema (it was never "
        "migrated); check --data-dir / --database-url (pallet serve creates the database), "
        "or pass --init to create it here"
    )
    assert not (data / "secret-key").exists()
    (data / "pallet.db").write_bytes(b"not a database at all" * 100)
    code, error = _cli("token", "list", "--data-dir", str(data))
    assert code == 1 and "cannot open the database" in error, error


def test_token_create_needs_the_index_secret_key(no_pallet_env, tmp_path, capsys, monkeypatch):
    """A database URL shared with a server, but a data dir without its secret key: the token
    could never verify, so it is refused (PALLET_SECRET_KEY or --init lift that)."""
    served = tmp_path / "served"
    db = f"sqlite:///{served / 'pallet.db'}"
    assert _cli("token", "create", "--init", "--data-dir", str(served)) == (0, "")
    capsys.readouterr()
    elsewhere = tmp_path / "elsewhere"
    code, error = _cli("token", "create", "--data-dir", str(elsewhere), "--database-url", db)
    assert code == 1
    assert "no secret key" in error and "PALLET_SECRET_KEY" in error, error
    assert not elsewhere.exists()
    # Listing and revoking need no key.
    assert _cli("token", "list", "--data-dir", str(elsewhere), "--database-url", db)[0] == 0
    monkeypatch.setenv("PALLET_SECRET_KEY", (served / "secret-key").read_text())
    assert _cli("token", "create", "--data-dir", str(elsewhere), "--database-url", db)[0] == 0
    assert not elsewhere.exists()


def test_serve_and_db_upgrade_still_create_the_database(no_pallet_env, tmp_path, capsys):
    data = tmp_path / "fresh"
    assert _cli("db", "upgrade", "--data-dir", str(data)) == (0, "")
    assert (data / "pallet.db").is_file()
    assert _cli("token", "create", "--data-dir", str(data)) == (0, "")
