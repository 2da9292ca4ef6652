"""Trusted publishing end to end: real clients in a stand-in CI against a real ``pallet serve``.

The stand-in (tests.oidc) is an OIDC issuer on 127.0.0.1 and GitHub Actions' ID-token endpoint,
reached through the variables a runner sets; GitLab's token arrives in its ``id_tokens:``
variable. The server speaks HTTPS (uv asks ``/_/oidc/`` over HTTPS only) with a certificate the
clients trust through ``SSL_CERT_FILE``. The attested dists are genuine: Sigstore-signed by real
GitHub and GitLab workflows (tests.attestation_assets).
"""

from __future__ import annotations

import json
import shutil
import ssl
from pathlib import Path

import httpx
import pytest

from tests.attestation_assets import GITHUB, GITLAB, attested
from tests.e2e.support import (
    Dists,
    Server,
    ServerFactory,
    http_get,
    listed,
    pallet_command,
    run,
    tool,
)
from tests.oidc import Issuer, github_claims, gitlab_claims
from tests.tls import Tls, make_tls

pytestmark = pytest.mark.e2e
INTEGRITY = "application/vnd.pypi.integrity.v1+json"


@pytest.fixture(scope="module")
def issuer():  # noqa: ANN201
    stand_in = Issuer().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory, tls: Tls, tmp_path_factory, issuer) -> Server:  # noqa: ANN001
    mp = pytest.MonkeyPatch()
    # sigstore copies its trust root into the user cache: this server's own.
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("server-cache")))
    try:
        return server_factory(extra_args=tls.serve_args())
    finally:
        mp.undo()


def add_publisher(server: Server, project: str, *args: str, issuer: Issuer) -> None:
    r = server.cli("trusted-publisher", "add", project, *args, "--issuer", issuer.issuer)
    assert r.returncode == 0, r.stdout + r.stderr


def ci_env(env: dict[str, str], tls: Tls, issuer: Issuer) -> dict[str, str]:
    return {**env, **issuer.github_env(), "SSL_CERT_FILE": str(tls.ca)}


def provenance(server: Server, project: str, version: str, filename: str) -> dict:
    r = http_get(
        f"{server.url}/integrity/{project}/{version}/{filename}/provenance", accept=INTEGRITY
    )
    assert r.status == 200, r.body
    return json.loads(r.body)


def minted_tokens(server: Server, project: str) -> list[str]:
    """The states of the tokens trusted publishing minted for ``project``."""
    rows = [line.split() for line in server.cli("token", "list").stdout.splitlines()]
    return [row[2] for row in rows if row[3] == project and "trusted" in row]


def with_attestation(folder: Path, which: tuple[str, ...]) -> tuple[Path, object]:
    a = attested(which)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(a.dist, folder)
    shutil.copy(a.attestation, folder)
    return folder / a.dist.name, a


def test_uv_publish_with_trusted_publishing_and_attestations(server, tls, issuer, env, tmp_path):  # noqa: ANN001
    dist, a = with_attestation(tmp_path / "dist", GITHUB)
    add_publisher(
        server, a.project, "--github", a.repository, "--workflow", a.workflow, issuer=issuer
    )
    issuer.next_claims = lambda: github_claims(a.repository, a.workflow)
    r = run(
        [tool("uv"), "publish", "--trusted-publishing", "always", "--publish-url",
         server.upload_url, str(dist), str(dist) + ".publish.attestation"],
        env=ci_env(env, tls, issuer),
    )  # fmt: skip
    assert r.returncode == 0, r.stdout
    assert dist.name in listed(server, a.project)
    body = provenance(server, a.project, a.version, dist.name)
    assert body["attestation_bundles"][0]["publisher"]["repository"] == a.repository
    assert body["attestation_bundles"][0]["attestations"] == [json.loads(a.attestation.read_text())]
    assert minted_tokens(server, a.project) == ["revoked"]  # uv burns it after the upload


def test_uv_is_refused_with_the_claims_that_did_not_match(server, tls, issuer, env, dists: Dists):  # noqa: ANN001
    add_publisher(server, "tp-uv-refused", "--github", "acme/refused", "--workflow", "release.yml",
                  issuer=issuer)  # fmt: skip
    issuer.next_claims = lambda: github_claims("acme/refused", "ci.yml")
    wheel = dists.wheel("tp-uv-refused", "1.0")
    r = run(
        [tool("uv"), "publish", "--trusted-publishing", "always", "--publish-url",
         server.upload_url, str(wheel)],
        env=ci_env(env, tls, issuer),
    )  # fmt: skip
    assert r.returncode != 0
    assert "invalid-publisher" in r.stdout and "job_workflow_ref" in r.stdout, r.stdout
    assert listed(server, "tp-uv-refused") == {}


def test_pallet_publish_upload_2_0_from_github_actions(server, tls, issuer, env, dists: Dists):  # noqa: ANN001
    add_publisher(server, "tp-pallet", "--github", "acme/tp-pallet", "--workflow", "release.yml",
                  "--environment", "pypi", issuer=issuer)  # fmt: skip
    issuer.next_claims = lambda: github_claims("acme/tp-pallet", environment="pypi")
    wheel = dists.wheel("tp-pallet", "1.0")
    r = run([*pallet_command(), "publish", "--url", server.url, str(wheel)],
            env=ci_env(env, tls, issuer))  # fmt: skip
    assert r.returncode == 0, r.stdout
    assert "trusted publishing: minted" in r.stdout
    assert wheel.name in listed(server, "tp-pallet")
    assert minted_tokens(server, "tp-pallet") == ["revoked"]  # burnt once the upload was done

    # Another job's token with no environment: refused, and never without one when required.
    issuer.next_claims = lambda: github_claims("acme/tp-pallet")
    again = dists.wheel("tp-pallet", "2.0")
    r = run([*pallet_command(), "publish", "--trusted-publishing", "always", "--url", server.url,
             str(again)], env=ci_env(env, tls, issuer))  # fmt: skip
    assert r.returncode == 1 and "environment" in r.stdout, r.stdout


def test_pallet_publish_from_gitlab_with_a_genuine_attestation(server, tls, issuer, env, tmp_path):  # noqa: ANN001
    dist, a = with_attestation(tmp_path / "dist", GITLAB)
    add_publisher(server, a.project, "--gitlab", a.repository, "--workflow-path", a.workflow,
                  issuer=issuer)  # fmt: skip
    host = issuer.issuer.removeprefix("http://")
    gitlab = {
        **env,
        "SSL_CERT_FILE": str(tls.ca),
        "GITLAB_CI": "true",
        "PALLET_ID_TOKEN": issuer.sign(gitlab_claims(a.repository, a.workflow, host=host)),
    }
    r = run([*pallet_command(), "publish", "--url", server.url, "--mechanism", "http-post-bytes",
             str(dist)], env=gitlab)  # fmt: skip
    assert r.returncode == 0, r.stdout
    body = provenance(server, a.project, a.version, dist.name)
    assert body["attestation_bundles"][0]["publisher"] == {
        "kind": "GitLab",
        "repository": a.repository,
        "workflow_filepath": a.workflow,
        "environment": None,
    }
    # The same GitLab token again (GitLab hands a job one token): its jti is spent.
    r = run([*pallet_command(), "publish", "--url", server.url, str(dist)], env=gitlab)
    assert r.returncode == 1 and "already used" in r.stdout, r.stdout


def test_twine_with_a_token_minted_as_the_publish_action_does(server, tls, issuer, env, tmp_path):  # noqa: ANN001
    """pypa's publish action exchanges the token itself, then runs ``twine upload`` with it
    (twine's own trusted publishing asks PyPI's hosts only)."""
    project = "tp-twine"
    add_publisher(server, project, "--github", "acme/tp-twine", "--workflow", "publish.yml",
                  issuer=issuer)  # fmt: skip
    oidc = issuer.sign(github_claims("acme/tp-twine", "publish.yml"))
    with httpx.Client(verify=ssl.create_default_context(cafile=tls.ca)) as http:
        audience = http.get(f"{server.url}/_/oidc/audience").json()["audience"]
        assert audience == "pallet"
        minted = http.post(f"{server.url}/_/oidc/mint-token", json={"token": oidc}).json()
    from tests.dists import make_wheel

    wheel = make_wheel(tmp_path, project, "1.0")
    r = run(
        [tool("twine"), "upload", "--non-interactive", "--cert", str(tls.ca), "--repository-url",
         server.upload_url, "-u", "__token__", "-p", minted["token"], str(wheel)],
        env={**env, "REQUESTS_CA_BUNDLE": str(tls.ca), "SSL_CERT_FILE": str(tls.ca)},
    )  # fmt: skip
    assert r.returncode == 0, r.stdout
    assert wheel.name in listed(server, project)
    assert http_get(f"{server.url}/simple/{project}/").status == 200


def test_the_trusted_publisher_command(server, issuer):  # noqa: ANN001
    r = server.cli("trusted-publisher", "add", "Cli.Project", "--github", "acme/cli",
                   "--workflow", "release.yml", "--environment", "pypi")  # fmt: skip
    assert r.returncode == 0 and r.stdout.startswith("added "), r.stdout + r.stderr
    assert "cli-project  github:acme/cli/.github/workflows/release.yml environment=pypi" in r.stdout
    assert "pending" in r.stdout  # the project does not exist yet
    pid = r.stdout.split()[1]
    again = server.cli("trusted-publisher", "add", "cli-project", "--github", "acme/cli",
                       "--workflow", "release.yml", "--environment", "pypi")  # fmt: skip
    assert again.stdout.startswith("already there: " + pid)
    listed_now = server.cli("trusted-publisher", "list", "cli-project").stdout
    assert (
        listed_now.count("\n") == 1
        and "issuer=https://token.actions.githubusercontent.com" in listed_now
    )
    for args, message in (
        (("--github", "acme", "--workflow", "r.yml"), "OWNER/NAME"),
        (("--github", "acme/cli"), "--workflow"),
        (("--gitlab", "g/p", "--workflow", "x.yml"), "--workflow-path"),
        (("--claim", "branch=main", "--issuer", "https://ci.example.com"), "sub"),
        (("--claim", "sub=x"), "--issuer"),
        (
            ("--github", "acme/cli", "--workflow", "r.yml", "--issuer", "http://ci.example.com"),
            "https",
        ),
    ):
        bad = server.cli("trusted-publisher", "add", "cli-project", *args)
        assert bad.returncode != 0 and message in bad.stderr, (args, bad.stderr)
    assert server.cli("trusted-publisher", "remove", pid).returncode == 0
    assert server.cli("trusted-publisher", "list", "cli-project").stdout == ""
    assert server.cli("trusted-publisher", "remove", pid).returncode == 1
