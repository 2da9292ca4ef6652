"""project search: names and summaries, indexed by each database's own full-text engine

- ``project_search``: one row per visible project (name, latest release's summary);
- PostgreSQL: a generated, stored ``document`` tsvector (name weight A, summary weight B) with a
  GIN index (without a pending list: see ``upgrade``). The ``simple`` configuration lowercases
  and nothing else: an English one would stem names (``requests`` to ``request``, ``testing``
  to ``test``) and drop stop words that are package names (``a``, ``it``, ``be``), so an exact
  name could fail to find itself; and it keeps both engines alike, since SQLite's
  ``unicode61`` does not stem either. ASCII punctuation is turned into spaces first, so
  ``zope.interface`` is the words ``zope`` and ``interface`` (the default parser would keep it
  whole, as a host name), as FTS5 splits it;
- SQLite: the FTS5 table ``project_search_fts`` over ``project_search`` (external content, so
  the text is stored once), kept in step by triggers on insert, update and delete, with prefix
  indexes for 2 and 3 letters (the prefixes that match the most words: a third to a half
  faster at 10,000 projects);
- a backfill of every visible project that has a published file. Its summary is its latest
  release's, chosen as the JSON API chooses ``info`` (PEP 440 order, preferring releases that
  are neither yanked nor pre-releases), so a backported 1.x published after 2.0 does not win.

Additive only (a new table and what indexes it), so replicas still running the previous release
keep working while this one rolls out; what they publish meanwhile is indexed at the project's
next publish.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op
from packaging.version import InvalidVersion, Version
from sqlalchemy.dialects.postgresql import TSVECTOR

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: Every ASCII punctuation character, and as many spaces (PostgreSQL's translate()).
_PUNCTUATION = "'" + "!\"#$%&''()*+,-./:;<=>?@[\\]^_`{|}~" + "'"
_SPACES = "repeat(' ', 32)"
_DOCUMENT = (
    f"setweight(to_tsvector('simple'::regconfig, translate(name, {_PUNCTUATION}, {_SPACES})), 'A')"
    " || setweight(to_tsvector('simple'::regconfig, "
    f"translate(coalesce(summary, ''), {_PUNCTUATION}, {_SPACES})), 'B')"
)

_FTS5 = (
    "CREATE VIRTUAL TABLE project_search_fts USING fts5("
    "name, summary, content='project_search', content_rowid='project_id', "
    "tokenize='unicode61', prefix='2 3')"
)
_INSERT = (
    "INSERT INTO project_search_fts(rowid, name, summary) "
    "VALUES (new.project_id, new.name, new.summary);"
)
# External content: FTS5 removes a row by the exact text it indexed, which the trigger has.
_DELETE = (
    "INSERT INTO project_search_fts(project_search_fts, rowid, name, summary) "
    "VALUES ('delete', old.project_id, old.name, old.summary);"
)
_TRIGGERS = (
    f"CREATE TRIGGER project_search_ai AFTER INSERT ON project_search BEGIN {_INSERT} END",
    f"CREATE TRIGGER project_search_ad AFTER DELETE ON project_search BEGIN {_DELETE} END",
    f"CREATE TRIGGER project_search_au AFTER UPDATE ON project_search BEGIN {_DELETE} {_INSERT} END",
)

# Lightweight tables: a migration keeps working whatever the models become later.
_projects = sa.table(
    "projects", sa.column("id", sa.Integer), sa.column("name"), sa.column("reserved_by")
)
_releases = sa.table(
    "releases",
    sa.column("id", sa.Integer),
    sa.column("project_id", sa.Integer),
    sa.column("version"),
    sa.column("yanked", sa.Boolean),
    sa.column("info", sa.JSON),
)
_files = sa.table("files", sa.column("release_id", sa.Integer), sa.column("published", sa.Boolean))


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("project_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
    ]
    if dialect == "postgresql":
        columns.append(
            sa.Column("document", TSVECTOR(), sa.Computed(_DOCUMENT, persisted=True), nullable=True)
        )
    search = op.create_table(
        "project_search",
        *columns,
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id"),
    )
    if dialect == "postgresql":
        # fastupdate off: GIN's pending list (new entries, scanned linearly by every search until
        # a vacuum merges them) trades reads for writes; here reads are many, writes one per
        # publish. With it on, a freshly backfilled index cost a millisecond per query more.
        op.create_index(
            "ix_project_search_document",
            "project_search",
            ["document"],
            postgresql_using="gin",
            postgresql_with={"fastupdate": "off"},
        )
    elif dialect == "sqlite":
        op.execute(_FTS5)
        for trigger in _TRIGGERS:
            op.execute(trigger)
    batch: list[dict] = []
    for row in _visible_projects():
        batch.append(row)
        if len(batch) == 1000:
            op.bulk_insert(search, batch)
            batch = []
    if batch:
        op.bulk_insert(search, batch)


def _visible_projects() -> Iterator[dict]:
    """``{project_id, name, summary}`` of every visible project with a published file."""
    published = sa.exists().where(_files.c.release_id == _releases.c.id, _files.c.published)
    rows = op.get_bind().execute(
        sa.select(
            _projects.c.id,
            _projects.c.name,
            _releases.c.version,
            _releases.c.yanked,
            _releases.c.info["summary"].as_string().label("summary"),
        )
        .join(_releases, _releases.c.project_id == _projects.c.id)
        .where(_projects.c.reserved_by.is_(None), published)
        .order_by(_projects.c.id)
    )
    current: int | None = None
    best: tuple | None = None
    for project_id, name, version, yanked, summary in rows:
        if project_id != current:
            if best is not None:
                yield best[1]
            current, best = project_id, None
        key = _latest_key(version, bool(yanked))
        if best is None or key > best[0]:
            best = (key, {"project_id": project_id, "name": name, "summary": summary or ""})
    if best is not None:
        yield best[1]


def _latest_key(version: str, yanked: bool) -> tuple:
    """As ``pallet.index.jsonapi._latest``: not yanked, then not a pre-release, then highest."""
    try:
        v = Version(version)
    except InvalidVersion:  # validated on upload; sorts below every valid version regardless
        return (not yanked, False, 0, Version("0"))
    return (not yanked, not v.is_prerelease, 1, v)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE project_search_fts")  # its triggers go with project_search
    op.drop_table("project_search")
