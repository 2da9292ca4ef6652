"""Full-text search (pallet.index.search) on SQLite's FTS5 and PostgreSQL's tsvector: what
matches, in which order, what never shows, hostile queries, and migration 0007's backfill."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from pallet.db import search as search_table
from pallet.db.engine import make_engine
from pallet.db.migrate import alembic_config, upgrade
from pallet.db.models import File, Project, ProjectSearch, Release
from pallet.db.session import read_session, write_session
from pallet.gc import sweep
from pallet.index import search
from pallet.index.search import Hit, fts5_query, terms, tsquery
from tests.api.uploads import upload
from tests.api.v2 import Uploader
from tests.dists import core_metadata, make_wheel

CATALOGUE = {
    "requests": "Python HTTP for Humans.",
    "Requests-OAuthlib": "OAuthlib authentication support for Requests.",
    "types-requests": "Typing stubs for requests",
    "httpx": "The next generation HTTP client, a requests alternative; requests requests",
    "zope.interface": "Interfaces for Python",
    "backports_zoneinfo": "Backport of the standard library zoneinfo module",
    "ruamel.yaml.clib": "C version of reader, parser and emitter for ruamel.yaml",
    "café-tools": "Outils pour le café",
}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def add_project(
    s: Session, name: str, summary: str | None, *, reserved_by: str | None = None
) -> int:
    project = Project(
        name=name,
        normalized_name=_normalize(name),
        created=datetime.now(UTC),
        reserved_by=reserved_by,
    )
    s.add(project)
    s.flush()
    search_table.record(s, project.id, name, summary)
    return project.id


@pytest.fixture
def engine(index):  # noqa: ANN001, ANN201
    with write_session(index.services.engine) as s:
        for name, summary in CATALOGUE.items():
            add_project(s, name, summary)
    return index.services.engine


def find(engine, query: str, **kw) -> list[str]:  # noqa: ANN001
    with read_session(engine) as s:
        return [h.name for h in search.search(s, query, **kw)]


def test_a_word_of_the_name_finds_the_project(engine):
    assert find(engine, "oauthlib") == ["Requests-OAuthlib"]
    assert find(engine, "interface") == ["zope.interface"]  # dots split names into words
    assert find(engine, "zoneinfo") == ["backports_zoneinfo"]  # so do underscores
    assert find(engine, "clib") == ["ruamel.yaml.clib"]


def test_a_prefix_finds_the_project(engine):
    assert find(engine, "reque")[:2] == ["requests", "Requests-OAuthlib"]
    assert set(find(engine, "reque")) == {
        "requests",
        "Requests-OAuthlib",
        "types-requests",
        "httpx",
    }
    assert find(engine, "zope.inter") == ["zope.interface"]
    assert find(engine, "backp") == ["backports_zoneinfo"]
    assert find(engine, "zo") == ["zope.interface", "backports_zoneinfo"]


def test_a_single_letter_is_a_whole_word(engine):
    assert find(engine, "c") == ["ruamel.yaml.clib"]  # "C version of ...", not café or clib
    assert find(engine, "h") == []


def test_a_word_of_the_summary_finds_the_project(engine):
    assert find(engine, "humans") == ["requests"]
    assert find(engine, "Typing STUBS") == ["types-requests"]
    assert find(engine, "emitter") == ["ruamel.yaml.clib"]


def test_every_word_must_match(engine):
    assert find(engine, "requests stubs") == ["types-requests"]
    assert find(engine, "requests nothingelse") == []


def test_exact_name_first_then_prefix_then_name_words_then_summary(engine):
    with read_session(engine) as s:
        hits = search.search(s, "requests")
    # httpx says "requests" three times, but only in its summary.
    assert [h.name for h in hits] == ["requests", "Requests-OAuthlib", "types-requests", "httpx"]
    assert [int(h.rank) for h in hits] == [3, 2, 1, 0]
    assert hits == sorted(hits, key=lambda h: -h.rank)
    assert hits[0] == Hit("requests", "requests", "Python HTTP for Humans.", 3.0)
    # Any spelling of a name is that name.
    assert find(engine, "Requests_OAuthlib")[0] == "Requests-OAuthlib"
    assert find(engine, "requests oauthlib")[0] == "Requests-OAuthlib"
    assert find(engine, "ZOPE.Interface")[0] == "zope.interface"


def test_unicode_words(engine):
    assert find(engine, "café") == ["café-tools"]
    assert find(engine, "CAFÉ-TOOLS") == ["café-tools"]
    assert find(engine, "outils") == ["café-tools"]


def test_hidden_projects_never_appear(engine):
    with write_session(engine) as s:
        add_project(
            s, "requests-secret", "requests under a first-release session", reserved_by="s1"
        )
    assert "requests-secret" not in find(engine, "requests")
    assert find(engine, "requests-secret") == []
    assert find(engine, "secret") == []


def test_projects_restricts_to_what_the_token_reads(engine):
    assert find(engine, "requests", projects=frozenset({"httpx", "types-requests"})) == [
        "types-requests",
        "httpx",
    ]
    assert find(engine, "requests", projects=frozenset({"requests-oauthlib"})) == [
        "Requests-OAuthlib"
    ]
    assert find(engine, "requests", projects=frozenset()) == []
    assert find(engine, "requests", projects=frozenset({"nope"})) == []


def test_limit(engine):
    assert find(engine, "requests", limit=2) == ["requests", "Requests-OAuthlib"]
    assert find(engine, "requests", limit=0) == []
    assert len(find(engine, "requests", limit=10**9)) == 4


def test_record_upserts(engine):
    with write_session(engine) as s:
        pid = s.query(Project.id).filter(Project.normalized_name == "httpx").scalar()
        search_table.record(s, pid, "httpx", "An async client")
    assert "httpx" not in find(engine, "requests")
    assert find(engine, "async") == ["httpx"]
    with write_session(engine) as s:
        search_table.record(s, pid, "httpx", "An async client")  # unchanged: left alone
        search_table.record(s, pid, "httpx", None)
    assert find(engine, "async") == []
    assert find(engine, "httpx") == ["httpx"]
    _check_index(engine)


def test_deleting_a_project_removes_it(engine):
    with write_session(engine) as s:
        s.execute(delete(Project).where(Project.normalized_name == "requests"))
    assert find(engine, "humans") == []
    assert find(engine, "requests") == ["Requests-OAuthlib", "types-requests", "httpx"]
    _check_index(engine)


def _check_index(engine) -> None:  # noqa: ANN001
    """FTS5's own check that the index matches the content table (the triggers kept it)."""
    if engine.dialect.name == "sqlite":
        with write_session(engine) as s:
            s.execute(
                text(
                    "INSERT INTO project_search_fts(project_search_fts) VALUES ('integrity-check')"
                )
            )


HOSTILE = [
    "",
    "   ",
    "!!!",
    "-_.",
    '"',
    '""',
    '"requests',
    'requests"',
    "*",
    "reque*",
    "*requests",
    "NEAR(requests oauthlib)",
    "NEAR(",
    "requests NEAR/2 oauthlib",
    "requests AND",
    "OR requests",
    "NOT",
    "requests NOT humans",
    "name:requests",
    "{name summary}: requests",
    "^requests",
    "reque:*",
    ":*",
    "requests:*A",
    "'requests':*",
    "&|!()",
    "requests & !humans | (x",
    "requests <-> oauthlib",
    "requests <2> oauthlib",
    "'; DROP TABLE projects; --",
    "requests' OR '1'='1",
    "%",
    "_",
    "requests%",
    "\\",
    "requests\\",
    "\x00requests",
    "requests\x00",
    "\u202erequests",
    "🙂",
    "requests 🙂",
    "ﬁle",  # a ligature
    "İstanbul",  # lowercases to two code points
    "ß",
    "日本語",
    "e\u0301",  # a combining accent
    "x" * 10_000,
    "requests " * 1_250,
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "1.0",
    "Ꟁ",  # a letter newer than FTS5's Unicode tables
]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_are_only_words(engine, query):
    with read_session(engine) as s:
        hits = search.search(s, query)
    assert all(h.normalized_name in {_normalize(n) for n in CATALOGUE} for h in hits)
    if not terms(query):
        assert hits == []


def test_hostile_queries_still_find_their_words(engine):
    assert find(engine, '"requests')[0] == "requests"
    assert find(engine, "NEAR(requests oauthlib)") == []  # "near" is a word like any other
    assert find(engine, "(requests) (oauthlib)") == ["Requests-OAuthlib"]
    assert find(engine, "reque:*")[0] == "requests"
    assert find(engine, "requests' OR '1'='1") == []  # "or", "1", "1" must match too
    assert find(engine, "'; DROP TABLE projects; --") == []
    assert set(find(engine, "requests " * 1_250)) == set(find(engine, "requests"))
    with read_session(engine) as s:
        assert s.query(Project).count() == len(CATALOGUE)


def test_random_queries_never_raise(engine):
    alphabet = (
        list("\"'*:&|!()^{}[]<>-_.,;%\\/+~@#$= \t\n") + list("reqstuáß日🙂") + ["NEAR", "AND"]
    )
    rng = random.Random(694)  # noqa: S311 - repeatable, not secret
    with read_session(engine) as s:
        for _ in range(300):
            query = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
            search.search(s, query)
            search.search(s, query, projects=frozenset({"requests"}))


def test_the_query_is_cut_to_bounded_terms():
    assert terms(" " * 300 + "requests") == []  # only the first 200 characters are read
    assert len(terms("word " * 2_000)) == search.MAX_TERMS
    assert terms('NEAR("a" b*) :* &|!() zope.interface_x') == [
        "near",
        "a",
        "b",
        "zope",
        "interface",
        "x",
    ]
    assert fts5_query(["reque", "x"]) == '"reque"* AND "x"'  # one letter: a whole word
    assert fts5_query(["reque", "x"], "name") == 'name : "reque"* AND name : "x"'
    assert tsquery(["reque", "x"]) == "'reque':* & 'x'"
    assert tsquery(["reque", "x"], "A") == "'reque':*A & 'x':A"


def test_a_published_project_is_found_by_its_latest_summary(index, tmp_path):
    """Upload as twine does; ``refresh`` stands for the publish path's call."""
    token = index.token()
    for version, summary in [
        ("2.0", "Second edition"),
        ("1.5", "Backported fix"),
        ("3.0a1", "Preview"),
    ]:
        meta = core_metadata("Shiny_Thing", version, summary=summary)
        wheel = make_wheel(tmp_path / version, "Shiny_Thing", version, metadata=meta)
        r = upload(index.client, wheel, token, name="Shiny_Thing", version=version)
        assert r.status_code == 200, r.text
        with write_session(index.services.engine) as s:
            project = s.query(Project).filter(Project.normalized_name == "shiny-thing").one()
            search_table.refresh(s, project)
    with read_session(index.services.engine) as s:
        hits = search.search(s, "shiny")
    assert hits == [Hit("Shiny_Thing", "shiny-thing", "Second edition", hits[0].rank)]
    assert find(index.services.engine, "backported") == []
    assert find(index.services.engine, "preview") == []


def test_the_migration_backfills_visible_projects(database_url):
    """Projects published before 0007 are found after it: by the summary of their latest
    release (PEP 440, not a pre-release or a yanked one while another exists), hidden ones
    and ones without a published file not at all."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        cfg = alembic_config(engine)
        command.downgrade(cfg, "0006")
        now = datetime.now(UTC)
        with write_session(engine) as s:

            def project(name: str, releases: dict, *, reserved_by: str | None = None) -> None:
                p = Project(
                    name=name,
                    normalized_name=_normalize(name),
                    created=now,
                    reserved_by=reserved_by,
                )
                s.add(p)
                s.flush()
                for version, (summary, yanked, published) in releases.items():
                    r = Release(
                        project_id=p.id,
                        version=version,
                        canonical_version=version,
                        created=now,
                        yanked=yanked,
                        info={"summary": summary, "description": "long " * 100},
                    )
                    s.add(r)
                    s.flush()
                    s.add(
                        File(
                            release_id=r.id,
                            filename=f"{_normalize(name)}-{version}.tar.gz",
                            size=1,
                            sha256="0" * 64,
                            upload_time=now,
                            packagetype="sdist",
                            python_version="source",
                            published=published,
                        )
                    )

            project(
                "Alpha",
                {
                    "10.0": ("alpha ten", False, True),
                    "9.0": ("alpha nine", False, True),
                    "11.0rc1": ("alpha candidate", False, True),
                    "12.0": ("alpha yanked", True, True),
                    "13.0": ("alpha unpublished", False, False),
                },
            )
            project("Beta", {"1.0": (None, False, True)})
            project("Gamma", {"1.0": ("gamma reserved", False, True)}, reserved_by="s1")
            project("Delta", {"1.0": ("delta unpublished", False, False)})
        command.upgrade(cfg, "head")
        with read_session(engine) as s:
            assert [(h.name, h.summary) for h in search.search(s, "alpha")] == [
                ("Alpha", "alpha ten")
            ]
            assert [h.name for h in search.search(s, "beta")] == ["Beta"]
            assert search.search(s, "gamma") == []
            assert search.search(s, "delta") == []
            for word in ("nine", "candidate", "yanked", "unpublished"):
                assert search.search(s, word) == []
        _check_index(engine)
    finally:
        engine.dispose()


def test_each_engine_has_its_search_objects_and_the_models_leave_only_those_out(database_url):
    """Migration 0007 builds what no model can declare (it exists on one engine only);
    ``schema_comparison_includes`` hides exactly that from Alembic's comparison."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import inspect

    from pallet.db.models import Base, schema_comparison_includes

    engine = make_engine(database_url)
    try:
        upgrade(engine)
        insp = inspect(engine)
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                triggers = conn.execute(
                    text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                ).scalars()
                assert {"project_search_ai", "project_search_au", "project_search_ad"} <= set(
                    triggers
                )
                assert "project_search_fts" in insp.get_table_names()
            else:
                assert "document" in {c["name"] for c in insp.get_columns("project_search")}
                index = conn.execute(
                    text("SELECT indexdef FROM pg_indexes WHERE tablename = 'project_search'")
                ).scalars()
                assert any(i.endswith("USING gin (document) WITH (fastupdate=off)") for i in index)
            unfiltered = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            opts = {"include_name": schema_comparison_includes}
            filtered = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
        assert unfiltered  # the engine's own objects, and nothing else:
        assert all("project_search_fts" in str(d) or "document" in str(d) for d in unfiltered), (
            unfiltered
        )
        assert filtered == []
    finally:
        engine.dispose()


def test_a_name_registered_with_no_files_is_found_by_its_name(index):  # noqa: ANN001
    up = Uploader(index, index.token())
    up.publish(up.open("Just_A_Name", "1.0"))
    assert index.client.get("/simple/just-a-name/").status_code == 200  # visible, with no files
    assert find(index.services.engine, "just") == ["Just_A_Name"]


def test_a_sweep_adds_rows_an_older_replica_did_not_write(index, tmp_path):  # noqa: ANN001
    """A replica of a release without search publishes (here: rows deleted after the fact);
    the next garbage-collection sweep makes those projects findable, hidden ones excepted."""
    engine = index.services.engine
    token = index.token()
    for name in ("older-a", "older-b"):
        wheel = make_wheel(tmp_path / name, name, "1.0")
        assert upload(index.client, wheel, token, name=name, version="1.0").status_code == 200
    with write_session(engine) as s:
        add_project(s, "older-hidden", "Not yet", reserved_by="a-session")
        s.execute(delete(ProjectSearch))
    assert find(engine, "older") == []
    assert sweep(index.services, scan=False)["search_rows"] == 2
    assert sorted(find(engine, "older")) == ["older-a", "older-b"]
    assert sweep(index.services, scan=False)["search_rows"] == 0  # nothing left to add
