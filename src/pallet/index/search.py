"""Full-text search over project names and summaries, by each database's own engine: SQLite's
FTS5 and PostgreSQL's tsvector with a GIN index (both built by migration 0007).

Writes (``pallet.db.search``) run in the transaction that makes a release visible, so the
search never lists what the index does not serve, on any replica. Reads (``search``) never hand
the user's text to either engine's query language: it is cut into words here (runs of letters
and digits, as both engines tokenise) and every word is quoted, so ``"``, ``*``, ``NEAR(``,
``:*``, ``&|!()`` and the like are only separators. Each word matches a whole word or, as a
prefix, the start of one ("reque" finds requests); all words must match.

Results come in tiers: the exact name first, then names that start with the query, then names
that hold its words (each of these by how much of the name the query covers), then summaries
(by the engine's own relevance).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.orm import Session

#: The longest query read (the rest is ignored), the most words matched and results returned:
#: bounds on what one request can make the database do.
MAX_QUERY_CHARS = 200
MAX_TERMS = 8
MAX_LIMIT = 200
#: A word this long or longer also matches as a prefix. A single letter does not: it would
#: match most of the index, and narrows nothing a person typing would want narrowed.
MIN_PREFIX = 2

_WORD = re.compile(r"[^\W_]+")  # letters and digits: what FTS5's unicode61 keeps as tokens
_TIERS = 3  # exact name, name prefix, words of the name; the summary below them


@dataclass(frozen=True)
class Hit:
    """One project found. The list is sorted by ``rank``, highest first: its integer part is
    the tier (3 the exact name, 2 the name starts with the query, 1 the name holds its words,
    0 only the summary does), its fraction the order within the tier. Comparable within one
    list only: relevance is each engine's own."""

    name: str
    normalized_name: str
    summary: str
    rank: float


# --- reading -------------------------------------------------------------------------------


def terms(query: str) -> list[str]:
    """The words searched for: lowercased runs of letters and digits, from the first
    ``MAX_QUERY_CHARS`` characters, at most ``MAX_TERMS`` of them. Nothing else survives."""
    return _WORD.findall(query[:MAX_QUERY_CHARS].lower())[:MAX_TERMS]


def fts5_query(words: list[str], column: str | None = None) -> str:
    """An FTS5 MATCH expression: every word a quoted string (``"`` doubled, though words never
    hold one), a prefix from ``MIN_PREFIX`` letters, all required; ``column`` restricts each
    to that column."""
    scope = f"{column} : " if column else ""
    return " AND ".join(
        f'{scope}"{w.replace(chr(34), chr(34) * 2)}"' + ("*" if len(w) >= MIN_PREFIX else "")
        for w in words
    )


def tsquery(words: list[str], weight: str = "") -> str:
    """A ``to_tsquery`` text: every word a quoted lexeme, a prefix (``:*``) from ``MIN_PREFIX``
    letters, all required; ``weight`` ("A": the name) restricts each to lexemes of that weight.
    Words hold neither quotes nor backslashes, the only characters special inside a quoted
    lexeme."""

    def lexeme(word: str) -> str:
        label = ("*" if len(word) >= MIN_PREFIX else "") + weight
        return f"'{word}':{label}" if label else f"'{word}'"

    return " & ".join(lexeme(w) for w in words)


# Two statements per engine, so a broad query ranks no more than it must:
# - names: every word in the name (tiers 0-2: exact, prefix, words), ordered by how much of the
#   name the query covers, from string lengths alone (so "reque" lists requests before
#   requests-oauthlib);
# - summaries: every word in the name and summary, less the names found (tier 3), ordered by
#   the engine's relevance, which costs a little per row matched; run only when the names did
#   not fill the page, so those were all of them.
# Ties go to the shorter name, then the name: the order is total.
_VISIBLE = "p.reserved_by IS NULL {restrict}"
_RESTRICT = "AND p.normalized_name IN :projects"
_NAMES = """
SELECT s.project_id, p.name, p.normalized_name, s.summary,
    CASE
        WHEN p.normalized_name = :exact THEN 0
        WHEN substr(p.normalized_name, 1, length(:exact)) = :exact THEN 1
        ELSE 2
    END AS tier,
    CAST(length(:exact) AS REAL) / length(p.normalized_name) AS score
FROM {source}
JOIN projects AS p ON p.id = s.project_id
WHERE {in_name} AND {visible}
ORDER BY tier, score DESC, length(p.normalized_name), p.normalized_name
LIMIT :limit
"""
_SUMMARIES = """
SELECT p.name, p.normalized_name, m.summary, 3 AS tier, m.score
FROM (
    SELECT s.project_id, s.summary, {relevance} AS score
    FROM {source}
    WHERE {in_text} AND s.project_id NOT IN :seen {fence}
) AS m
JOIN projects AS p ON p.id = m.project_id
WHERE {visible}
ORDER BY m.score DESC, length(p.normalized_name), p.normalized_name
LIMIT :limit
"""
_FTS5 = {
    "source": "project_search_fts "
    "JOIN project_search AS s ON s.project_id = project_search_fts.rowid",
    "in_name": "project_search_fts MATCH :in_name",
    "in_text": "project_search_fts MATCH :in_text",
    # bm25(): lower is better, each name word weighs 10 summary words.
    "relevance": "max(-bm25(project_search_fts, 10.0, 1.0), 0.0)",
    "fence": "",
}
_TSQUERY = "to_tsquery(CAST('simple' AS regconfig), :{})"
_TSVECTOR = {
    "source": "project_search AS s",
    "in_name": f"s.document @@ {_TSQUERY.format('in_name')}",
    "in_text": f"s.document @@ {_TSQUERY.format('match')}",
    # The generated column weighs name A, summary B. ts_rank rather than ts_rank_cd: proximity
    # means little in a one-line summary, and cover density cost more per row matched.
    "relevance": f"ts_rank(s.document, {_TSQUERY.format('match')})",
    # Rank before joining projects (a subquery with OFFSET is not merged into its query): the
    # join then carries a number per row, not the tsvector, which made it the slower half.
    "fence": "OFFSET 0",
}


@cache
def _statements(dialect: str, restricted: bool) -> tuple[TextClause, TextClause]:
    """(names, summaries), built once per engine and restriction: building them per request
    costs more than running them (as in ``index.queries``)."""
    parts = dict(_TSVECTOR if dialect == "postgresql" else _FTS5)
    parts["visible"] = _VISIBLE.format(restrict=_RESTRICT if restricted else "")
    names, summaries = (text(sql.format(**parts)) for sql in (_NAMES, _SUMMARIES))
    summaries = summaries.bindparams(bindparam("seen", expanding=True))
    if restricted:
        names, summaries = (
            s.bindparams(bindparam("projects", expanding=True)) for s in (names, summaries)
        )
    return names, summaries


def search(
    session: Session,
    query: str,
    *,
    limit: int = 50,
    projects: frozenset[str] | None = None,
) -> list[Hit]:
    """Visible projects matching every word of ``query``, best first (see the module doc).

    ``projects``: the normalised names the reader may see (``None``: all). ``limit`` is capped
    at ``MAX_LIMIT``. A query without a letter or digit finds nothing."""
    words = terms(query)
    limit = min(limit, MAX_LIMIT)
    if not words or limit < 1 or (projects is not None and not projects):
        return []
    dialect = session.get_bind().dialect.name
    params: dict[str, object] = {"exact": "-".join(words), "limit": limit}
    if dialect == "postgresql":
        params.update(match=tsquery(words), in_name=tsquery(words, "A"))
    else:
        params.update(in_name=fts5_query(words, "name"), in_text=fts5_query(words))
    if projects is not None:
        params["projects"] = sorted(projects)
    names, summaries = _statements(dialect, projects is not None)
    rows = list(session.execute(names, params))
    if len(rows) < limit:
        params.update(limit=limit - len(rows), seen=[r.project_id for r in rows])
        rows += session.execute(summaries, params)
    return [Hit(r.name, r.normalized_name, r.summary, _rank(r.tier, r.score)) for r in rows]


def _rank(tier: int, score: float | None) -> float:
    """``Hit.rank``: the tier's number plus the order within it, mapped into [0, 1): a name's
    coverage is below 1 past the exact name; relevance is unbounded, ``r / (1 + r)`` keeps its
    order."""
    s = max(float(score or 0.0), 0.0)
    fraction = 0.0 if tier == 0 else (min(s, 0.999999) if tier < _TIERS else s / (1.0 + s))
    return float(_TIERS - tier) + fraction
