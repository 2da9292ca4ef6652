"""PEP 740 provenance: genuine Sigstore-signed attestations uploaded by a trusted publisher
through both protocols, verified against its identity, and served as PyPI serves them."""

from __future__ import annotations

import hashlib
import json

import pytest

from pallet.auth.oidc import claims as rules
from pallet.auth.oidc import publishers
from pallet.db.session import write_session
from tests.api.uploads import upload
from tests.api.v2 import Uploader
from tests.attestation_assets import GITHUB, GITLAB, attested
from tests.dists import make_wheel
from tests.oidc import Issuer, github_claims, gitlab_claims

INTEGRITY = "application/vnd.pypi.integrity.v1+json"
JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def issuer():  # noqa: ANN201
    stand_in = Issuer().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(autouse=True)
def sigstore_cache(tmp_path, monkeypatch):  # noqa: ANN001
    """sigstore copies its embedded trust root into the user cache: one per test, no races."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def minted(index, issuer, kind, repository, workflow, project, environment=None) -> str:  # noqa: ANN001
    with write_session(index.services.engine) as s:
        if kind == "GitHub":
            rule = rules.github_rules(repository, workflow, environment)
            publishers.add(s, project, rules.GITHUB, issuer.issuer, rule)
            claims = github_claims(repository, workflow, environment=environment)
        else:
            rule = rules.gitlab_rules(repository, workflow, environment)
            publishers.add(s, project, rules.GITLAB, issuer.issuer, rule)
            host = issuer.issuer.removeprefix("http://")
            claims = gitlab_claims(repository, workflow, host=host, environment=environment)
    r = index.client.post("/_/oidc/mint-token", json={"token": issuer.sign(claims)})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def page_file(index, project: str, filename: str) -> dict:  # noqa: ANN001
    body = index.client.get(f"/simple/{project}/", headers={"Accept": JSON}).json()
    assert body["meta"]["api-version"] == "1.5"
    return next(f for f in body["files"] if f["filename"] == filename)


def provenance_of(index, project: str, filename: str) -> dict:  # noqa: ANN001
    entry = page_file(index, project, filename)
    assert entry["provenance"] is not None
    url = f"/simple/{project}/" + entry["provenance"]
    r = index.client.get(url, headers={"Accept": INTEGRITY})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == INTEGRITY
    html = index.client.get(f"/simple/{project}/", headers={"Accept": "text/html"}).text
    assert f'data-provenance="{entry["provenance"]}"' in html
    return r.json()


@pytest.mark.parametrize("which", ["github", "gitlab"])
def test_legacy_upload_with_attestations_serves_provenance(index, issuer, which):  # noqa: ANN001
    a = attested(GITLAB if which == "gitlab" else GITHUB)
    token = minted(index, issuer, a.kind, a.repository, a.workflow, a.project)
    attestation = json.loads(a.attestation.read_text())
    r = upload(
        index.client, a.dist, token, name=a.project, version=a.version,
        attestations=json.dumps([attestation]),
    )  # fmt: skip
    assert r.status_code == 200, r.text

    body = provenance_of(index, a.project, a.dist.name)
    # The project page marks the file, linking its provenance.
    project_page = index.client.get(f"/project/{a.project}/").text
    assert (
        f'href="/integrity/{a.project}/{a.version}/{a.dist.name}/provenance">attested'
        in project_page
    )
    [bundle] = body["attestation_bundles"]
    assert body["version"] == 1
    assert bundle["publisher"]["kind"] == a.kind
    assert bundle["publisher"]["repository"] == a.repository
    assert bundle["attestations"] == [attestation]
    # The served object is one pypi-attestations reads back and verifies.
    from pypi_attestations import Distribution, Provenance

    provenance = Provenance.model_validate(body)
    dist = Distribution(name=a.dist.name, digest=hashlib.sha256(a.dist.read_bytes()).hexdigest())
    for b in provenance.attestation_bundles:
        for att in b.attestations:
            att.verify(b.publisher, dist, offline=True)


def test_upload_2_0_with_attestations_serves_provenance(index, issuer):  # noqa: ANN001
    a = attested()
    token = minted(index, issuer, a.kind, a.repository, a.workflow, a.project)
    up = Uploader(index, token)
    session = up.open(a.project, a.version)
    fs = up.start(session, a.dist, "http-post-bytes")
    assert up.send(fs, a.dist.read_bytes()).status_code in (200, 201, 204)
    r = index.client.post(
        fs["mechanism"]["attestations_url"],
        content=a.attestation.read_text().join("[]"),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert r.status_code == 204, r.text
    assert up.complete(fs).status_code == 201
    up.publish(session)
    body = provenance_of(index, a.project, a.dist.name)
    assert body["attestation_bundles"][0]["publisher"] == {
        "kind": "GitHub",
        "repository": a.repository,
        "workflow": a.workflow,
        "environment": None,
    }


def test_attestations_signed_by_another_workflow_are_refused(index, issuer):  # noqa: ANN001
    a = attested()
    # A genuine attestation, but this publisher is another workflow of the same repository.
    token = minted(index, issuer, a.kind, a.repository, "nightly.yml", a.project)
    r = upload(
        index.client, a.dist, token, name=a.project, version=a.version,
        attestations=a.attestation.read_text().join("[]"),
    )  # fmt: skip
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["type"] == "urn:pallet:problem:invalid-attestations"
    assert "nightly.yml" in body["errors"][0]["message"]
    assert index.client.get(f"/simple/{a.project}/").status_code == 404  # nothing published


def test_files_without_provenance_say_so(index, issuer, tmp_path):  # noqa: ANN001
    wheel = make_wheel(tmp_path, "plain", "1.0")
    assert upload(index.client, wheel, index.token(), name="plain", version="1.0").is_success
    assert page_file(index, "plain", wheel.name)["provenance"] is None
    assert "attested" not in index.client.get("/project/plain/").text
    assert "data-provenance" not in index.client.get("/simple/plain/").text
    r = index.client.get(f"/integrity/plain/1.0/{wheel.name}/provenance")
    assert r.status_code == 404 and r.json()["type"] == "urn:pallet:problem:no-provenance"
    assert index.client.get("/integrity/nothing/1.0/x.whl/provenance").status_code == 404
    for nul in (
        "/integrity/pla%00in/1.0/x.whl",
        "/integrity/plain/2.1%00/x.whl",
        f"/integrity/plain/1.0/{wheel.name}%00",
    ):  # PostgreSQL refuses NUL in text
        assert index.client.get(nul + "/provenance").status_code == 404, nul

    a = attested()
    token = minted(index, issuer, a.kind, a.repository, a.workflow, a.project)
    atts = a.attestation.read_text().join("[]")
    upload(index.client, a.dist, token, name=a.project, version=a.version, attestations=atts)
    url = f"/integrity/{a.project}/{a.version}/{a.dist.name}/provenance"
    assert index.client.get(url, headers={"Accept": "application/json"}).is_success
    assert index.client.get(url, headers={"Accept": "text/html"}).status_code == 406
    assert index.client.get(url.replace(a.version, "9.9")).status_code == 404


def test_private_mode_guards_provenance(make_index, issuer):  # noqa: ANN001
    index = make_index(private=True)
    a = attested()
    token = minted(index, issuer, a.kind, a.repository, a.workflow, a.project)
    atts = a.attestation.read_text().join("[]")
    upload(index.client, a.dist, token, name=a.project, version=a.version, attestations=atts)
    url = f"/integrity/{a.project}/{a.version}/{a.dist.name}/provenance"
    assert index.client.get(url).status_code == 401
    other = index.token(scope="read", projects=["something-else"])
    assert index.client.get(url, auth=("__token__", other)).status_code == 403
    reader = index.token(scope="read", projects=[a.project])
    assert index.client.get(url, auth=("__token__", reader)).status_code == 200
