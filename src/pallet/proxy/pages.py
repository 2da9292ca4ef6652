"""Upstream project pages: fetched, checked, kept in the database, revalidated, and served stale
when the upstream fails.

A project is bound to the first upstream that has it and stays there (one source per project,
never mixed per version). A stored page younger than ``upstream_page_ttl`` is served as it is;
an older one is revalidated with its ETag. What the upstream answers is believed only when it
parses as a project page and its ``_last-serial`` has not gone back (a regression is refused
and the stored page kept). When the upstream cannot be asked, or answers a 5xx, the stored
page is served with a warning; only without one is the request answered 502.

Runs in a worker thread (blocking I/O); callers make concurrent requests for one project
share a fetch (``pallet.index.cache.Builds``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from pallet.core.problems import Problem
from pallet.core.upstream_page import PageError, UpstreamFile, UpstreamProject, parse
from pallet.db.models import ProxiedFile, ProxiedPage
from pallet.db.session import read_session, retrying
from pallet.proxy.upstreams import Client, Upstream, UpstreamError

log = logging.getLogger("pallet.proxy")


@dataclass(frozen=True)
class Proxied:
    project: UpstreamProject
    upstream: str
    version: int  # changes whenever the stored page does
    warning: str | None = None  # set when served stale: why


def unavailable(normalized: str, why: str) -> Problem:
    return Problem(
        502,
        "upstream-unavailable",
        "Upstream unavailable",
        f"No stored copy of {normalized!r}, and its upstream could not be asked: {why}.",
    )


def dumps(project: UpstreamProject) -> str:
    def default(value: object) -> str:
        assert isinstance(value, datetime)
        return value.isoformat()

    return json.dumps(asdict(project), default=default, separators=(",", ":"))


def loads(text: str) -> UpstreamProject:
    doc = json.loads(text)
    files = [
        UpstreamFile(
            **{**f, "upload_time": datetime.fromisoformat(f["upload_time"])}
            if f.get("upload_time")
            else f
        )
        for f in doc.pop("files")
    ]
    return UpstreamProject(files=files, **doc)


def stored(s: Session, normalized: str) -> ProxiedPage | None:
    return s.get(ProxiedPage, normalized)


_CURRENT = select(ProxiedPage.version, ProxiedPage.fetched_at).where(
    ProxiedPage.normalized_name == bindparam("name")
)


@dataclass(frozen=True)
class Current:
    version: int
    fresh: bool


class Pages:
    def __init__(self, engine, client: Client, upstreams: list[Upstream], ttl: int) -> None:  # noqa: ANN001
        self.engine, self.client, self.ttl = engine, client, ttl
        self.upstreams = {u.name: u for u in upstreams}

    def current(self, s: Session, normalized: str) -> Current | None:
        """The stored page's version and whether it is still fresh (one small query)."""
        row = s.execute(_CURRENT, {"name": normalized}).first()
        if row is None:
            return None
        return Current(row.version, self._fresh(row.fetched_at))

    def _fresh(self, fetched_at: datetime) -> bool:
        return datetime.now(UTC) - _aware(fetched_at) < timedelta(seconds=self.ttl)

    def get(self, normalized: str, candidates: tuple[str, ...], offline: bool) -> Proxied | None:
        """The page of ``normalized`` from the first of ``candidates`` that has it (the bound
        one, once there is one); None when none has it. Raises a 502 Problem when it cannot
        be asked and nothing is stored."""
        with read_session(self.engine) as s:
            row = stored(s, normalized)
            copy = None if row is None else (row.upstream, row.version, row.etag, row.page,
                                             row.upstream_serial, row.fetched_at)  # fmt: skip
        if copy is not None:
            upstream, version, etag, page, serial, fetched_at = copy
            if offline or self._fresh(fetched_at) or upstream not in self.upstreams:
                return Proxied(loads(page), upstream, version)
            return self._revalidate(
                normalized, self.upstreams[upstream], version, etag, page, serial
            )
        if offline:
            return None
        for name in candidates:
            found = self._first_fetch(normalized, self.upstreams[name])
            if found is not None:
                return found
        return None

    def _first_fetch(self, normalized: str, upstream: Upstream) -> Proxied | None:
        try:
            answer = self.client.page(upstream, normalized, None)
        except UpstreamError as exc:
            raise unavailable(normalized, str(exc)) from None
        if answer.status in (404, 410):
            return None
        if answer.status != 200:
            raise unavailable(normalized, f"{upstream.name} answered {answer.status}")
        try:
            project = parse(answer.body, answer.headers.get("content-type", ""), answer.url,
                            normalized)  # fmt: skip
        except PageError as exc:
            log.warning("proxy: %s's page for %s refused: %s", upstream.name, normalized, exc)
            raise unavailable(normalized, f"{upstream.name} sent a page that is not one") from None
        return self._store(normalized, upstream, project, answer.headers.get("etag"), None)

    def _revalidate(self, normalized: str, upstream: Upstream, version: int, etag: str | None,
                    page: str, serial: int | None) -> Proxied | None:  # fmt: skip
        def stale(why: str) -> Proxied:
            log.warning("proxy: serving a stored %s: %s", normalized, why)
            return Proxied(loads(page), upstream.name, version, warning=why)

        try:
            answer = self.client.page(upstream, normalized, etag)
        except UpstreamError as exc:
            return stale(str(exc))
        if answer.status == 304:
            retrying(self.engine, lambda s: _touch(s, normalized))
            return Proxied(loads(page), upstream.name, version)
        if answer.status in (404, 410):
            retrying(self.engine, lambda s: _forget(s, normalized))
            return None
        if answer.status != 200:
            return stale(f"{upstream.name} answered {answer.status}")
        try:
            project = parse(answer.body, answer.headers.get("content-type", ""), answer.url,
                            normalized)  # fmt: skip
        except PageError as exc:
            return stale(f"{upstream.name} sent a page that is not one ({exc})")
        if serial is not None and project.serial is not None and project.serial < serial:
            return stale(f"{upstream.name}'s serial went back from {serial} to {project.serial}")
        return self._store(normalized, upstream, project, answer.headers.get("etag"), page)

    def _store(self, normalized: str, upstream: Upstream, project: UpstreamProject,
               etag: str | None, previous: str | None) -> Proxied:  # fmt: skip
        text = dumps(project)

        def work(s: Session) -> int:
            row = stored(s, normalized)
            now = datetime.now(UTC)
            if row is None:
                row = ProxiedPage(normalized_name=normalized, upstream=upstream.name, version=0,
                                  page=text, fetched_at=now)  # fmt: skip
                s.add(row)
            if row.page != text or row.version == 0:
                row.version += 1
                row.page = text
                _record_files(s, normalized, upstream.name, project)
            row.etag, row.upstream_serial, row.fetched_at = etag, project.serial, now
            return row.version

        version = retrying(self.engine, work)
        if project.unhashed:
            log.warning("proxy: %s lists %d file(s) of %s without a sha256; left out",
                        upstream.name, project.unhashed, normalized)  # fmt: skip
        return Proxied(project, upstream.name, version)


def _record_files(s: Session, normalized: str, upstream: str, project: UpstreamProject) -> None:
    """Where each listed file comes from, by sha256 (what a download looks up)."""
    listed = {f.sha256: f for f in project.files}
    shas = sorted(listed)
    known: dict[str, ProxiedFile] = {}
    for i in range(0, len(shas), 500):
        chunk = shas[i : i + 500]
        rows = s.execute(select(ProxiedFile).where(ProxiedFile.sha256.in_(chunk))).scalars()
        known.update((row.sha256, row) for row in rows)
    for sha, f in listed.items():
        row = known.get(sha)
        if row is None:
            s.add(ProxiedFile(sha256=sha, filename=f.filename, project=normalized,
                              upstream=upstream, url=f.url, size=f.size, stored=False,
                              metadata_sha256=f.core_metadata_sha256,
                              metadata_stored=False))  # fmt: skip
            continue
        if not row.stored:
            row.filename, row.url, row.size, row.upstream = f.filename, f.url, f.size, upstream
            row.project = normalized
        if not row.metadata_stored:
            row.metadata_sha256 = f.core_metadata_sha256


def _touch(s: Session, normalized: str) -> None:
    row = stored(s, normalized)
    if row is not None:
        row.fetched_at = datetime.now(UTC)


def _forget(s: Session, normalized: str) -> None:
    row = stored(s, normalized)
    if row is not None:
        s.delete(row)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
