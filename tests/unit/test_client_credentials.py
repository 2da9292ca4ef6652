"""Where ``pallet publish`` finds its URL and secret: flags, then PALLET_* variables, then a
named repository from a config file, then .netrc. Every test passes its own ``env`` and
``cwd``, so the real home directory is never read."""

# ruff: noqa: S105, S106 - every "secret" here is a made-up test value

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from pallet.client.credentials import TOKEN_USER, ConfigError, Credentials, resolve

URL = "https://pallet.example.com/"


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An isolated environment: config dir and .netrc under tmp_path, neither written yet."""
    (tmp_path / "project").mkdir()
    return {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "NETRC": str(tmp_path / "netrc"),
    }


def project(env: dict[str, str]) -> Path:
    return Path(env["HOME"]).parent / "project"


def user_config(env: dict[str, str], text: str) -> Path:
    path = Path(env["XDG_CONFIG_HOME"]) / "pallet" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def pyproject(env: dict[str, str], text: str) -> Path:
    path = project(env) / "pyproject.toml"
    path.write_text(text)
    return path


def netrc(env: dict[str, str], text: str) -> None:
    Path(env["NETRC"]).write_text(text)


def run(env: dict[str, str], **kw) -> Credentials:  # noqa: ANN003
    args = {"url": None, "token": None, "username": None, "password": None}
    args["repository_name"] = kw.pop("repository", None)
    return resolve(**{**args, **kw}, env=env, cwd=project(env))


INTERNAL = '[repositories.internal]\nurl = "https://internal.example/"\ntoken = "cfg-token"\n'


def test_token_flag_is_basic_auth_as_token_user(home):
    creds = run(home, url=URL, token="tok-flag")
    assert (creds.username, creds.password, creds.source) == (None, "tok-flag", "--token")
    request = next(creds.auth().auth_flow(httpx.Request("GET", URL)))
    sent = request.headers["Authorization"].removeprefix("Basic ")
    assert base64.b64decode(sent).decode() == f"{TOKEN_USER}:tok-flag"


def test_username_and_password_flags(home):
    creds = run(home, url=URL, username="alice", password="pw-flag")
    assert (creds.username, creds.password, creds.source) == ("alice", "pw-flag", "--password")


def test_flags_beat_env_which_beats_config_which_beats_netrc(home):
    """Each layer is removed in turn; the next one down must take over."""
    user_config(home, INTERNAL.replace("https://internal.example/", URL))
    netrc(home, "machine pallet.example.com login nora password netrc-pw\n")
    env = {**home, "PALLET_TOKEN": "env-token"}
    assert run(env, repository="internal", token="tok-flag").password == "tok-flag"
    assert run(env, repository="internal").password == "env-token"
    assert run(home, repository="internal").password == "cfg-token"
    creds = run(home, url=URL)
    assert (creds.username, creds.password, creds.source) == ("nora", "netrc-pw", ".netrc")


def test_pallet_password_env_with_username(home):
    env = {**home, "PALLET_USERNAME": "bob", "PALLET_PASSWORD": "env-pw"}
    creds = run(env, url=URL)
    assert (creds.username, creds.password, creds.source) == ("bob", "env-pw", "PALLET_PASSWORD")
    assert run({**env, "PALLET_TOKEN": "env-token"}, url=URL).source == "PALLET_TOKEN"


def test_url_flag_beats_pallet_url_beats_repository(home):
    user_config(home, INTERNAL)
    env = {**home, "PALLET_URL": "https://from-env.example/"}
    assert run(env, repository="internal", url=URL).url == URL
    assert run(env, repository="internal").url == "https://from-env.example/"
    assert run(home, repository="internal").url == "https://internal.example/"


def test_repository_from_pyproject_tool_pallet(home):
    pyproject(
        home,
        '[project]\nname = "x"\n[tool.pallet.repositories.team]\n'
        'url = "https://team.example/"\nusername = "ci"\npassword = "team-pw"\n',
    )
    creds = run(home, repository="team")
    assert (creds.url, creds.username, creds.password) == ("https://team.example/", "ci", "team-pw")
    assert "pyproject.toml" in creds.source and "'team'" in creds.source


def test_user_config_wins_over_pyproject_for_the_same_name(home):
    user_config(home, INTERNAL)
    pyproject(home, '[tool.pallet.repositories.internal]\nurl = "https://other/"\ntoken = "proj"\n')
    creds = run(home, repository="internal")
    assert (creds.url, creds.password) == ("https://internal.example/", "cfg-token")
    assert "config.toml" in creds.source


def test_default_repository_and_pallet_repository_env(home):
    user_config(
        home,
        'default-repository = "internal"\n' + INTERNAL + "[repositories.other]\n"
        'url = "https://other.example/"\ntoken = "other-token"\n',
    )
    assert run(home).url == "https://internal.example/"
    assert run({**home, "PALLET_REPOSITORY": "other"}).password == "other-token"
    assert run(home, repository="other").password == "other-token"


def test_token_env_is_read_and_an_empty_one_is_an_error(home):
    user_config(home, '[repositories.ci]\nurl = "https://ci.example/"\ntoken-env = "CI_TOK"\n')
    assert run({**home, "CI_TOK": "from-ci"}, repository="ci").password == "from-ci"
    with pytest.raises(ConfigError, match=r"\$CI_TOK, which is empty"):
        run({**home, "CI_TOK": ""}, repository="ci")


def test_unknown_repository_names_the_files_searched(home):
    user_config(home, INTERNAL)
    with pytest.raises(ConfigError) as exc:
        run(home, repository="nope")
    message = str(exc.value)
    assert "'nope'" in message
    assert str(Path(home["XDG_CONFIG_HOME"]) / "pallet" / "config.toml") in message
    assert str(project(home) / "pyproject.toml") in message


def test_missing_url_is_refused(home):
    with pytest.raises(ConfigError, match="no index URL"):
        run(home, token="t")
    user_config(home, '[repositories.nourl]\ntoken = "t"\n')
    with pytest.raises(ConfigError, match="no index URL"):
        run(home, repository="nourl")


@pytest.mark.parametrize("url", ["ftp://pallet.example.com/", "pallet.example.com", "file:///x"])
def test_non_http_url_is_refused(home, url):
    with pytest.raises(ConfigError, match="http"):
        run(home, url=url, token="t")


def test_netrc_is_matched_by_the_url_host(home):
    netrc(
        home,
        "machine other.example login x password wrong\n"
        "machine pallet.example.com login nora password right\n",
    )
    creds = run(home, url="https://pallet.example.com:8443/simple/")
    assert (creds.username, creds.password) == ("nora", "right")
    assert run(home, url="https://unlisted.example/").password is None


def test_no_credentials_at_all(home):
    creds = run(home, url=URL)
    assert creds.password is None and creds.auth() is None
    assert creds.describe() == "no credentials"


@pytest.mark.parametrize(
    ("kw", "who"),
    [
        ({"token": "s3cr3t-token-value"}, "a token"),
        ({"username": "alice", "password": "s3cr3t-token-value"}, "alice"),
    ],
)
def test_describe_names_the_source_never_the_secret(home, kw, who):
    text = run(home, url=URL, **kw).describe()
    assert "s3cr3t" not in text
    assert text.startswith(who) and "--" in text
