"""The front proxy closes idle connections, not Pallet: a replica that closes first races the
proxy's next request on that connection, and nginx answers a POST that loses the race with a
502 it does not retry (seen in the cluster test's database outage)."""

import re
from pathlib import Path

from pallet.cli.serve import _uvicorn_options
from pallet.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def test_pallet_keeps_idle_connections_longer_than_the_documented_nginx() -> None:
    block = DEPLOY.read_text().split("upstream pallet_replicas {", 1)[1].split("}", 1)[0]
    nginx_idle = float(re.search(r"keepalive_timeout\s+(\d+)s;", block).group(1))  # type: ignore[union-attr]
    settings = Settings()
    assert settings.keep_alive_timeout > nginx_idle
    assert _uvicorn_options(settings)["timeout_keep_alive"] == settings.keep_alive_timeout


def test_the_keep_alive_timeout_is_a_setting() -> None:
    settings = Settings.from_env({"PALLET_KEEP_ALIVE_TIMEOUT": "120"})
    assert _uvicorn_options(settings)["timeout_keep_alive"] == 120.0
