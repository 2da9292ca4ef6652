"""Search benchmark: ``pallet.index.search`` over 10,000 projects, on SQLite's FTS5 and, when a
PostgreSQL is given, on its tsvector with a GIN index.

Each backend gets a fresh database, migrated, then seeded straight into the tables (projects
and their ``project_search`` rows, as publishing leaves them): names of one to three words
joined by ``-``, ``_`` or ``.`` (some ``py``-, ``django-``, ``types-`` prefixed) from a
vocabulary whose common words are very common, and summaries of 4 to 14 words drawn the same
way, so some words match thousands of projects (the commonest is in two summaries of three).
200 queries, varied as a search box sees them (exact names, prefixes of two to six letters,
one letter, words of names and of summaries, several words, names wrapped in query syntax,
misses), are run once to warm up, then timed over ``--rounds`` rounds, each call in a session
of its own (connection checkout, queries, rows). The target: p99 well under 20 ms.

    python benchmarks/search.py [--projects 10000] [--rounds 5] [--postgres URL]

``--postgres`` (else ``PALLET_TEST_POSTGRES_URL``) names a PostgreSQL server: a database is
created in it for the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Table, exit_cleanly_on_sigterm, log  # noqa: E402

from pallet.db.engine import make_engine  # noqa: E402
from pallet.db.migrate import upgrade  # noqa: E402
from pallet.db.models import Project, ProjectSearch  # noqa: E402
from pallet.index import search  # noqa: E402

COMMON = (
    "python http client api json async data test tools utils cli django flask plugin cloud "
    "aws google sdk parser web framework library fast simple types stubs for the and a of to "
    "with in support extension"
).split()
PREFIXES = ("py", "django-", "types-", "flask-", "pytest-")
SEPARATORS = ("-", "-", "-", "_", ".")


def vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    """``COMMON`` first, then made-up words: drawn with Zipf-like weights, the first are often."""
    syllables = [c + v for c in "bcdfghjklmnprstvwxz" for v in "aeiou"] + ["qu", "th", "sh"]
    words = list(COMMON)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def catalogue(n: int, seed: int = 694) -> list[tuple[str, str]]:
    """``n`` distinct (name, summary) pairs, always the same for one seed."""
    rng = random.Random(seed)  # noqa: S311 - repeatable, not secret
    words = vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(words))]
    out: list[tuple[str, str]] = []
    names: set[str] = set()
    while len(out) < n:
        parts = rng.choices(words[len(COMMON) // 2 :], k=rng.choice((1, 1, 2, 2, 2, 3)))
        name = rng.choice(SEPARATORS).join(parts)
        if rng.random() < 0.2:
            name = rng.choice(PREFIXES) + name
        normalized = search.terms(name)
        key = "-".join(normalized)
        if key in names:
            continue
        names.add(key)
        summary = " ".join(rng.choices(words, weights, k=rng.randint(4, 14))).capitalize()
        out.append((name, summary + "."))
    return out


def queries(projects: list[tuple[str, str]], count: int = 200, seed: int = 7) -> list[str]:
    """``count`` queries, in the mix a search box sees (see the module doc)."""
    rng = random.Random(seed)  # noqa: S311 - repeatable, not secret
    names = [name for name, _ in projects]
    summary_words = [w for _, s in projects[:500] for w in search.terms(s)]
    makers = [
        lambda: rng.choice(names),  # an exact name, as typed
        lambda: rng.choice(names).upper().replace("-", "_"),  # another spelling of it
        lambda: rng.choice(names)[: rng.randint(2, 6)],  # a prefix
        lambda: rng.choice("abcdefghijklmnoprstuvw"),  # one letter
        lambda: rng.choice(search.terms(rng.choice(names))),  # a word of a name
        lambda: rng.choice(summary_words),  # a word of a summary (common ones are common)
        lambda: " ".join(rng.sample(summary_words, 2)),  # two words
        lambda: rng.choice(COMMON) + " " + rng.choice(COMMON),  # two common words
        lambda: f'"{rng.choice(names)}"* :* &|!() {{^}}',  # operators: only separators here
        lambda: "zzqx" + str(rng.randint(0, 10**6)),  # a miss
    ]
    return [makers[i % len(makers)]() for i in range(count)]


def seed(url: str, projects: list[tuple[str, str]]) -> None:
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    with Session(engine) as s, s.begin():
        s.execute(
            insert(Project),
            [
                {
                    "id": i + 1,
                    "name": name,
                    "normalized_name": "-".join(search.terms(name)),
                    "created": now,
                    "last_serial": 0,
                }
                for i, (name, _) in enumerate(projects)
            ],
        )
        s.execute(
            insert(ProjectSearch),
            [
                {"project_id": i + 1, "name": name, "summary": summary}
                for i, (name, summary) in enumerate(projects)
            ],
        )
    with engine.begin() as conn:  # statistics, as a database in use has them
        conn.execute(text("ANALYZE"))
    engine.dispose()


def measure(url: str, qs: list[str], rounds: int) -> tuple[list[float], list[int], str]:
    """Milliseconds per call (every round), hits per query (first round), the slowest query."""
    engine = make_engine(url)
    try:
        for q in qs:  # warm: connections, statement caches, pages
            with Session(engine) as s:
                search.search(s, q)
        times: list[float] = []
        hits: list[int] = []
        slowest = (0.0, "")
        for r in range(rounds):
            for q in qs:
                with Session(engine) as s:
                    started = time.perf_counter()
                    found = search.search(s, q)
                    ms = (time.perf_counter() - started) * 1000
                times.append(ms)
                slowest = max(slowest, (ms, q))
                if r == 0:
                    hits.append(len(found))
        return times, hits, slowest[1]
    finally:
        engine.dispose()


@contextlib.contextmanager
def fresh_postgres(base: str) -> Iterator[str]:
    """A new database in the server of ``base``; dropped (connections and all) after."""
    import psycopg

    name = f"pallet_search_{uuid.uuid4().hex[:10]}"
    admin = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="times each query is timed")
    parser.add_argument("--postgres", help="a PostgreSQL server (else PALLET_TEST_POSTGRES_URL)")
    args = parser.parse_args()
    postgres = args.postgres or os.environ.get("PALLET_TEST_POSTGRES_URL")
    projects = catalogue(args.projects)
    qs = queries(projects)
    results: dict[str, tuple[list[float], list[int], str]] = {}
    with tempfile.TemporaryDirectory(prefix="pallet-bench-search-") as tmp:
        backends = [("SQLite (FTS5)", contextlib.nullcontext(f"sqlite:///{tmp}/pallet.db"))]
        if postgres:
            backends.append(("PostgreSQL (tsvector, GIN)", fresh_postgres(postgres)))
        for label, database in backends:
            with database as url:
                started = time.perf_counter()
                seed(url, projects)
                log(
                    f"{label}: {args.projects:,} projects seeded in {time.perf_counter() - started:.1f} s"
                )
                results[label] = measure(url, qs, args.rounds)
    title = f"search: {args.projects:,} projects, {len(qs)} queries x {args.rounds} rounds"
    table = Table(title, list(results))
    for metric, of in [
        ("p50 (ms)", lambda t: percentile(t, 50)),
        ("p99 (ms)", lambda t: percentile(t, 99)),
        ("max (ms)", max),
    ]:
        table.add(metric, {label: f"{of(r[0]):.2f}" for label, r in results.items()})
    table.add(
        "hits per query, mean", {k: f"{statistics.fmean(r[1]):.1f}" for k, r in results.items()}
    )
    table.add("queries with no hit", {k: str(r[1].count(0)) for k, r in results.items()})
    table.notes.append("slowest query: " + "; ".join(f"{k}: {r[2]!r}" for k, r in results.items()))
    if not postgres:
        table.notes.append(
            "PostgreSQL not measured: give --postgres URL or PALLET_TEST_POSTGRES_URL"
        )
    table.print()  # and saves it


if __name__ == "__main__":
    main()
