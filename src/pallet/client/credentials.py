"""Where the client finds the index URL and credentials, in the order twine users expect:
command-line flags, then ``PALLET_*`` variables, then a named repository from a config file
(``~/.config/pallet/config.toml`` or ``[tool.pallet]`` in ``./pyproject.toml``), then
``.netrc`` for the URL's host. Secrets are never printed: ``describe`` says only where they
came from.

Config file shape (both files; the user's file wins for the same repository name)::

    default-repository = "internal"

    [repositories.internal]
    url = "https://pallet.example.com/"
    token-env = "INTERNAL_PALLET_TOKEN"   # or token = "...", or username/password
"""

from __future__ import annotations

import netrc
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

TOKEN_USER = "__token__"  # noqa: S105 - the conventional user name, not a secret


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Credentials:
    url: str
    username: str | None = None
    password: str | None = None
    source: str = "none"

    def auth(self) -> httpx.Auth | None:
        """HTTP Basic (``__token__`` + token for tokens): what every index, legacy or not, takes."""
        if self.password is None:
            return None
        return httpx.BasicAuth(self.username or TOKEN_USER, self.password)

    def describe(self) -> str:
        if self.password is None:
            return "no credentials"
        who = "a token" if (self.username or TOKEN_USER) == TOKEN_USER else self.username
        return f"{who} from {self.source}"


def config_files(env: Mapping[str, str], cwd: Path) -> list[tuple[Path, tuple[str, ...]]]:
    """(file, table path) pairs, strongest first."""
    base = Path(env.get("XDG_CONFIG_HOME") or Path(env.get("HOME", "~")).expanduser() / ".config")
    user = (
        Path(env["PALLET_CONFIG"]) if env.get("PALLET_CONFIG") else base / "pallet" / "config.toml"
    )
    return [(user, ()), (cwd / "pyproject.toml", ("tool", "pallet"))]


def _tables(env: Mapping[str, str], cwd: Path) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path, table in config_files(env, cwd):
        try:
            with path.open("rb") as f:
                data: Any = tomllib.load(f)
        except FileNotFoundError:
            continue
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        for key in table:
            data = data.get(key, {}) if isinstance(data, dict) else {}
        if isinstance(data, dict) and data:
            out.append((path, data))
    return out


def repository(name: str | None, env: Mapping[str, str], cwd: Path) -> tuple[dict[str, Any], str]:
    """The settings of repository ``name`` (or the configured default), and where they came from."""
    tables = _tables(env, cwd)
    if name is None:
        name = next(
            (t.get("default-repository") for _p, t in tables if t.get("default-repository")), None
        )
        if name is None:
            return {}, ""
    for path, table in tables:
        repo = (table.get("repositories") or {}).get(name)
        if isinstance(repo, dict):
            return repo, f"repository {name!r} in {path}"
    searched = ", ".join(str(p) for p, _t in config_files(env, cwd))
    raise ConfigError(f"repository {name!r} is not configured (looked in {searched})")


def _netrc(url: str, env: Mapping[str, str]) -> tuple[str, str] | None:
    host = urlsplit(url).hostname
    path = env.get("NETRC") or str(Path(env.get("HOME", "~")).expanduser() / ".netrc")
    if not host or not os.path.exists(path):
        return None
    try:
        entry = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not entry or entry[2] is None:
        return None
    return entry[0] or TOKEN_USER, entry[2]


def resolve(
    *,
    url: str | None,
    token: str | None,
    username: str | None,
    password: str | None,
    repository_name: str | None,
    env: Mapping[str, str],
    cwd: Path,
) -> Credentials:
    repo, repo_source = repository(repository_name or env.get("PALLET_REPOSITORY"), env, cwd)
    url = url or env.get("PALLET_URL") or repo.get("url")
    if not url:
        raise ConfigError("no index URL: pass --url, set PALLET_URL, or use --repository")
    if urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"--url must be an http(s) URL, not {url!r}")
    if token:
        return Credentials(url, None, token, "--token")
    if password:
        return Credentials(url, username, password, "--password")
    if env.get("PALLET_TOKEN"):
        return Credentials(url, None, env["PALLET_TOKEN"], "PALLET_TOKEN")
    if env.get("PALLET_PASSWORD"):
        user = username or env.get("PALLET_USERNAME")
        return Credentials(url, user, env["PALLET_PASSWORD"], "PALLET_PASSWORD")
    if repo:
        secret = repo.get("token")
        if repo.get("token-env"):
            secret = env.get(str(repo["token-env"]))
            if not secret:
                raise ConfigError(
                    f"{repo_source} reads its token from ${repo['token-env']}, which is empty"
                )
        if secret:
            return Credentials(url, None, str(secret), repo_source)
        if repo.get("password"):
            return Credentials(url, repo.get("username"), str(repo["password"]), repo_source)
    found = _netrc(url, env)
    if found:
        return Credentials(url, found[0], found[1], ".netrc")
    return Credentials(url)
