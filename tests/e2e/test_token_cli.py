"""``pallet token create`` pointed at the wrong place, end to end: the real CLI refuses instead of
making a fresh index, and the real server names a token it does not know in its 401, which
twine and uv show to the user."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.support import Dists, Server, ServerFactory, describe, pallet_command, run
from tests.e2e.test_clients import twine_upload, uv_publish

pytestmark = pytest.mark.e2e


def pallet(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALLET_")}
    return subprocess.run(
        [*pallet_command(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def words(text: str) -> str:
    """Clients wrap long messages to the terminal's width: compare word by word."""
    return " ".join(text.split())


def test_token_create_refuses_a_data_dir_without_an_index(
    server: Server, server_factory: ServerFactory, tmp_path: Path
) -> None:
    typo = tmp_path / "pallet-dta"
    where = ["--data-dir", str(typo)]
    if server.database_url:
        # On PostgreSQL "no index" is a database nobody migrated.
        assert server_factory.database is not None
        where += ["--database-url", server_factory.database.create()]
    for command in (["token", "create"], ["token", "list"], ["token", "revoke", "0" * 16]):
        result = pallet(*command, *where)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        reason = "holds no Pallet schema" if server.database_url else "no Pallet database at"
        assert reason in lines[0], lines[0]
        assert ("--init" in lines[0]) == (command[1] == "create")
        assert not typo.exists()

    # The server's own data dir (and database) still work without --init.
    assert server.create_token("--description", "right place").startswith("pallet_")


def test_unknown_token_is_named_by_the_server_and_shown_by_clients(
    server: Server, dists: Dists, env: dict[str, str], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "another-index"
    created = pallet("token", "create", "--init", "--data-dir", str(elsewhere))
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    token_id, secret = token.split("_", 2)[1:]
    expected = (
        f"Token {token_id} is not known to this index "
        "(was it created against another data dir or database?)."
    )
    wheel = dists.wheel("stray-token", "1.0")

    twine = twine_upload(server, [wheel], env, token=token, extra=("--verbose",))
    assert twine.returncode != 0, describe(twine)
    assert "401" in twine.stdout, describe(twine)
    assert expected in words(twine.stdout), describe(twine)

    uv = uv_publish(server, [wheel], env, token=token, check_url=False)
    assert uv.returncode != 0, describe(uv)
    assert expected in words(uv.stdout), describe(uv)

    for result in (twine, uv):
        assert secret not in result.stdout.replace(token, ""), describe(result)
    assert secret not in server.log(None)


def test_pallet_publish_reports_the_unknown_token(
    server: Server, dists: Dists, env: dict[str, str], tmp_path: Path
) -> None:
    created = pallet("token", "create", "--init", "--data-dir", str(tmp_path / "other"))
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    token_id = token.split("_")[1]
    wheel = dists.wheel("stray-token", "2.0")
    result = run(
        [*pallet_command(), "publish", "--url", server.url + "/", "-t", token, wheel], env=env
    )
    assert result.returncode != 0, describe(result)
    assert f"Token {token_id} is not known to this index" in words(result.stdout), describe(result)
