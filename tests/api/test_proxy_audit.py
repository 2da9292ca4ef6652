"""The proxy's audit log over HTTP (``/_/proxy/audit``) and in the web UI (``/proxy/audit``): a
token always, a limited token only its projects, newest first, paged, and bad parameters a 400
problem."""

from __future__ import annotations

import base64

from pallet.db import audit
from pallet.db.session import write_session


def _basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()}


def _files(body: dict) -> list[str]:
    return [e["url"].rsplit("/", 1)[1] for e in body["entries"]]


def _fill(index) -> None:  # noqa: ANN001
    with write_session(index.services.engine) as s:
        for i, project in enumerate(["six", "idna", "six", "attrs", "six"]):
            audit.record(s, project=project, upstream="pypi", kind="file",
                         url=f"https://upstream.example/{project}-{i}.whl", sha256=f"{i:064x}",
                         decision="upstream: pypi", outcome="stored")  # fmt: skip


def test_the_log_needs_a_token_even_on_a_public_index(index):  # noqa: ANN001
    _fill(index)
    r = index.client.get("/_/proxy/audit")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert "WWW-Authenticate" in r.headers


def test_a_token_for_every_project_reads_the_log_newest_first_in_pages(index):  # noqa: ANN001
    _fill(index)
    auth = _basic(index.token(scope="read"))
    r = index.client.get("/_/proxy/audit", headers=auth)
    assert r.status_code == 200 and r.headers["cache-control"] == "private, no-store"
    entries = r.json()["entries"]
    assert [e["project"] for e in entries] == ["six", "attrs", "six", "idna", "six"]
    assert entries[0]["url"].endswith("six-4.whl") and entries[0]["sha256"] == f"{4:064x}"
    assert entries[0]["decision"] == "upstream: pypi" and entries[0]["outcome"] == "stored"

    first = index.client.get("/_/proxy/audit?limit=2", headers=auth).json()
    assert _files(first) == ["six-4.whl", "attrs-3.whl"]
    rest = index.client.get(f"/_/proxy/audit?before={first['before']}", headers=auth).json()
    assert _files(rest) == ["six-2.whl", "idna-1.whl", "six-0.whl"]
    assert rest["before"] is None  # not a full page: nothing older
    only_six = index.client.get("/_/proxy/audit?project=SIX", headers=auth).json()
    assert _files(only_six) == ["six-4.whl", "six-2.whl", "six-0.whl"]


def test_a_token_limited_to_some_projects_reads_only_those(index):  # noqa: ANN001
    _fill(index)
    auth = _basic(index.token(scope="read", projects=["six", "attrs"]))
    assert index.client.get("/_/proxy/audit?project=idna", headers=auth).status_code == 403
    whole = index.client.get("/_/proxy/audit", headers=auth)
    assert whole.status_code == 200
    assert _files(whole.json()) == ["six-4.whl", "attrs-3.whl", "six-2.whl", "six-0.whl"]
    r = index.client.get("/_/proxy/audit?project=six", headers=auth)
    assert r.status_code == 200
    assert _files(r.json()) == ["six-4.whl", "six-2.whl", "six-0.whl"]


def test_bad_parameters_are_a_400_problem(index):  # noqa: ANN001
    auth = _basic(index.token(scope="read"))
    for query in (
        "limit=0",
        "limit=1001",
        "limit=x",
        "limit=%C2%B2",
        "before=-1",
        "before=99999999999999999999",
        "project=%00",  # PostgreSQL refuses NUL in text: refused before it gets there
        "project=-six",
    ):
        r = index.client.get(f"/_/proxy/audit?{query}", headers=auth)
        assert r.status_code == 400, query
        assert r.json()["type"].endswith("invalid-parameter")


def test_the_web_ui_shows_the_log_to_a_signed_in_token(index):  # noqa: ANN001
    from tests.api.test_web import page, sign_in

    _fill(index)
    r = index.client.get("/proxy/audit", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/signin")

    sign_in(index, index.token(scope="read", projects=["six", "attrs"]))
    html = page(index, "/proxy/audit")
    assert "Proxy audit" in html and "https://upstream.example/six-4.whl" in html
    assert "attrs-3.whl" in html and "idna" not in html  # not this token's project
    only = page(index, "/proxy/audit?project=attrs")
    assert "attrs-3.whl" in only and "six-4.whl" not in only
    assert index.client.get("/proxy/audit?project=idna").status_code == 403
    for before in ("99999999999999999999", "-1", "x"):  # a clear 400 page, never a 500
        r = index.client.get(f"/proxy/audit?before={before}")
        assert r.status_code == 400 and "before must be an integer" in r.text, before
    assert "six-4.whl" not in page(index, "/proxy/audit?before=2")
    assert "Older entries" in page(index, "/proxy/audit?limit=1")
    assert "Older entries" not in page(index, "/proxy/audit")
