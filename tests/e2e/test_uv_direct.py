"""``uv publish --direct`` (uv 0.12.6, the last release with it) against Pallet's reserve /
PUT / finalize endpoints, on the embedded default and on a real S3 store (SeaweedFS)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from tests.e2e.support import Dists, Server, client_env, describe, listed, run

pytestmark = pytest.mark.e2e

UV_DIRECT = Path(
    os.environ.get("PALLET_TEST_UV_DIRECT")
    or Path(sys.executable).parent.parent / "uv-direct" / "bin" / "uv"
)


@pytest.fixture(scope="module")
def direct_server(backend_server: Server) -> Server:
    if not UV_DIRECT.exists():
        pytest.fail(f"uv 0.12.6 is not installed at {UV_DIRECT} (make install does it)")
    return backend_server


def uv_direct(server: Server, files: list[Path], env: dict[str, str], token: str | None = None):  # noqa: ANN201
    env = {**env, "UV_TEST_NO_HTTP_RETRY_DELAY": "1"}
    return run(
        [
            UV_DIRECT,
            "publish",
            "--direct",
            "--preview-features",
            "direct-publish",
            "--publish-url",
            f"{server.url}/direct/",
            "-t",
            token or server.token,
            *files,
        ],
        env=env,
        timeout=180,
    )


def test_uv_direct_publish_then_skip_then_install(
    direct_server: Server, dists: Dists, tmp_path: Path
) -> None:
    env = client_env(tmp_path)
    files = [dists.wheel("omega", "1.0"), dists.sdist("omega", "1.0")]
    first = uv_direct(direct_server, files, env)
    assert first.returncode == 0, describe(first)
    assert listed(direct_server, "omega") == {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files
    }
    second = uv_direct(direct_server, files, env)
    assert second.returncode == 0, describe(second)
    assert "skipping" in second.stdout.lower() or "already" in second.stdout.lower(), second.stdout
    py = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", py], timeout=120)
    assert made.returncode == 0
    from tests.e2e.support import tool

    got = run(
        [
            tool("uv"),
            "pip",
            "install",
            "--python",
            py / "bin" / "python",
            "--index-url",
            direct_server.simple_url,
            "omega==1.0",
        ],
        env=env,
    )
    assert got.returncode == 0, describe(got)


def test_uv_direct_different_file_under_published_name_fails(
    direct_server: Server, dists: Dists, tmp_path: Path
) -> None:
    env = client_env(tmp_path)
    original = dists.wheel("psi", "1.0")
    assert uv_direct(direct_server, [original], env).returncode == 0
    other = dists.wheel("psi", "1.0", variant="other")
    result = uv_direct(direct_server, [other], env)
    assert result.returncode != 0
    assert "File already exists" in result.stdout, result.stdout
    assert (
        listed(direct_server, "psi")[original.name]
        == hashlib.sha256(original.read_bytes()).hexdigest()
    )


def test_uv_direct_needs_a_valid_token(direct_server: Server, dists: Dists, tmp_path: Path):
    env = client_env(tmp_path)
    bogus = "pallet_" + "0" * 16 + "_nope"
    result = uv_direct(direct_server, [dists.wheel("chi", "1.0")], env, token=bogus)
    assert result.returncode != 0
    assert listed(direct_server, "chi") == {}


def test_logs_hold_no_tokens_or_signatures(direct_server: Server, dists: Dists, tmp_path: Path):
    """One line per request, but never a token, a password or a pre-signed query string."""
    env = client_env(tmp_path)
    assert uv_direct(direct_server, [dists.wheel("phi", "1.0")], env).returncode == 0
    log = direct_server.log(None)
    assert "/direct//finalize" in log and "reserve" in log  # the requests are logged...
    assert direct_server.token not in log
    secret = direct_server.token.split("_", 2)[2]  # pallet_<id>_<secret>; the secret may hold "_"
    assert secret not in log
    for marker in ("Signature=", "X-Amz-Credential", "X-Pallet-Expires", "Authorization"):
        assert marker not in log, marker
