"""Name claims in the database: what covers a name on each engine, who claims, the CLI, and
the migration that makes every existing project claim its own name."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text

from pallet.core.routing import Claim
from pallet.db import claims
from pallet.db.engine import make_engine
from pallet.db.migrate import alembic_config, upgrade
from pallet.db.session import read_session, write_session
from tests.api.uploads import upload
from tests.api.v2 import Uploader, cli
from tests.dists import make_wheel


def covering(index, name: str) -> list[str]:  # noqa: ANN001
    with read_session(index.services.engine) as s:
        return sorted(str(c) for c in claims.covering(s, name))


def test_names_and_namespaces_cover_as_pep_752_says(index):  # noqa: ANN001
    with write_session(index.services.engine) as s:
        for text_ in ("acme-*", "acme-utils", "widgets", "acme-data-*"):
            assert claims.add(s, Claim.parse(text_), "operator")
        assert not claims.add(s, Claim.parse("ACME_*"), "operator")  # the same namespace
    assert covering(index, "acme") == ["acme-*"]
    assert covering(index, "acme-utils") == ["acme-*", "acme-utils"]
    assert covering(index, "acme-data-lake") == ["acme-*", "acme-data-*"]
    assert covering(index, "acmecorp") == []
    assert covering(index, "widgets") == ["widgets"] and covering(index, "widgets-x") == []


def test_the_first_private_upload_claims_its_name_for_good(index, tmp_path):  # noqa: ANN001
    token = index.token()
    wheel = make_wheel(tmp_path, "Legacy_Thing", "1.0")
    assert upload(index.client, wheel, token, name="Legacy_Thing", version="1.0").status_code == 200
    up = Uploader(index, token)
    up.cancel(up.open("Staged-Thing", "1.0"))  # a first release, cancelled: still claimed
    assert covering(index, "legacy-thing") == ["legacy-thing"]
    assert covering(index, "staged-thing") == ["staged-thing"]


def test_the_claim_command(index):  # noqa: ANN001
    assert cli(index, "claim", "acme-*", "Solo")[0] == 0
    code, out = cli(index, "claim", "--list")
    assert code == 0 and "acme-*\toperator" in out and "solo\toperator" in out
    code, out = cli(index, "claim", "--remove", "solo", "never-claimed")
    assert code == 1 and "removed solo" in out and "not claimed: never-claimed" in out
    assert covering(index, "solo") == []


def test_the_migration_claims_every_existing_project(database_url):  # noqa: ANN001
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        command.downgrade(alembic_config(engine), "0007")
        with write_session(engine) as s:
            s.execute(
                text(
                    "INSERT INTO projects (name, normalized_name, created, last_serial) "
                    "VALUES ('Old_One', 'old-one', :now, 1)"
                ),  # fmt: skip
                {"now": datetime.now(UTC)},
            )
        upgrade(engine)
        with read_session(engine) as s:
            assert [str(c) for c in claims.covering(s, "old-one")] == ["old-one"]
    finally:
        engine.dispose()


def test_pep_752_namespaces_in_the_api(index, tmp_path):  # noqa: ANN001
    """A project a namespace covers says so (``owned`` unless it predates the claim), the
    change reaches cached pages at once, and the namespace URLs list and describe them."""
    token = index.token()
    old = make_wheel(tmp_path / "old", "acme-old", "1.0")
    assert upload(index.client, old, token, name="acme-old", version="1.0").status_code == 200
    accept = {"Accept": "application/vnd.pypi.simple.v1+json"}
    before = index.client.get("/simple/acme-old/", headers=accept).json()
    assert before["meta"]["api-version"] == "1.5" and before["namespaces"] is None
    assert cli(index, "claim", "acme-*", "acme-cloud-*", "other-*")[0] == 0
    new = make_wheel(tmp_path / "new", "acme-new", "1.0")
    assert upload(index.client, new, token, name="acme-new", version="1.0").status_code == 200
    cloud = make_wheel(tmp_path / "cloud", "acme-cloud-x", "1.0")
    assert upload(index.client, cloud, token, name="acme-cloud-x", version="1.0").status_code == 200
    page = lambda name: index.client.get(f"/simple/{name}/", headers=accept).json()["namespaces"]  # noqa: E731
    assert page("acme-old") == [{"name": "acme", "owned": False}]  # grandfathered
    assert page("acme-new") == [{"name": "acme", "owned": True}]
    assert page("acme-cloud-x") == [{"name": "acme", "owned": True},
                                    {"name": "acme-cloud", "owned": True}]  # fmt: skip
    assert index.client.get("/namespaces").json() == [
        {"name": "acme"}, {"name": "acme-cloud"}, {"name": "other"}
    ]  # fmt: skip
    assert index.client.get("/namespace/acme").json() == {
        "name": "acme", "parent": None, "children": ["acme-cloud"]
    }  # fmt: skip
    assert (
        index.client.get("/namespace/Acme.Cloud", follow_redirects=True).json()["parent"] == "acme"
    )
    assert index.client.get("/namespace/nothing").status_code == 404
    assert cli(index, "claim", "--remove", "acme-*", "acme-cloud-*")[0] == 0
    assert page("acme-new") is None  # grant removal: null at once
