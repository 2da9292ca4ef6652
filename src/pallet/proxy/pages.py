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

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from pallet.core.problems import Problem
from pallet.core.routing import Route
from pallet.core.upstream_page import PageError, UpstreamFile, UpstreamProject, parse
from pallet.db import audit, leases
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
    fresh_for: float = 0.0  # seconds it may be served without asking the upstream again


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
    fresh_for: float  # seconds the stored page stays fresh (<= 0: revalidate it first)

    @property
    def fresh(self) -> bool:
        return self.fresh_for > 0


class Pages:
    def __init__(self, engine, client: Client, upstreams: list[Upstream], ttl: int,  # noqa: ANN001
                 timeout: float, retry_after: float = 0.0) -> None:  # fmt: skip
        self.engine, self.client, self.ttl = engine, client, ttl
        self.upstreams = {u.name: u for u in upstreams}
        # A fetch holds its page's lease at most this long: the upstream's timeout, twice
        # (connect and read), and slack.
        self.lease_ttl = int(2 * timeout) + 10
        # An upstream that just failed (unreachable, timed out, 5xx) is not asked again for
        # ``retry_after`` seconds: in an outage, requests get the stored page (or a 502) at
        # once, not each after a timeout of their own.
        self.retry_after = retry_after
        self._down_until: dict[str, float] = {}

    def _failing(self, upstream: str) -> float:
        """Seconds until ``upstream`` is asked again (0: ask now)."""
        return max(0.0, self._down_until.get(upstream, 0.0) - time.monotonic())

    def _failed(self, upstream: Upstream) -> None:
        if self.retry_after > 0:
            self._down_until[upstream.name] = time.monotonic() + self.retry_after

    def current(self, s: Session, normalized: str) -> Current | None:
        """The stored page's version and whether it is still fresh (one small query)."""
        row = s.execute(_CURRENT, {"name": normalized}).first()
        if row is None:
            return None
        age = (datetime.now(UTC) - _aware(row.fetched_at)).total_seconds()
        return Current(row.version, self.ttl - age)

    def _fresh(self, fetched_at: datetime) -> bool:
        return datetime.now(UTC) - _aware(fetched_at) < timedelta(seconds=self.ttl)

    def get(self, normalized: str, route: Route, offline: bool) -> Proxied | None:
        """The page of ``normalized`` from the first of the route's upstreams that has it (the
        bound one, once there is one); None when none has it. Raises a 502 Problem when it
        cannot be asked and nothing is stored. One replica fetches a page at a time (a lease);
        the others wait for its result, bounded, and serve what it stored."""
        copy = self._copy(normalized)
        if copy is not None and (offline or copy.upstream not in self.upstreams):
            return self._as_stored(copy)
        if (fresh := self._if_fresh(copy)) is not None:
            return fresh
        if offline:
            return None
        bound = copy.upstream if copy is not None else (route.upstreams or ("",))[0]
        if wait := self._failing(bound):
            why = f"{bound} is failing; asked again in {wait:.0f} s"
            if copy is None:
                raise unavailable(normalized, why)
            return Proxied(loads(copy.page), copy.upstream, copy.version, warning=why)
        lease = "proxy-page:" + hashlib.sha256(normalized.encode()).hexdigest()[:40]
        if not leases.take(self.engine, lease, ttl=self.lease_ttl):
            newer = self._wait_for_other_replica(normalized, copy, lease)
            if newer is not None:
                return Proxied(loads(newer.page), newer.upstream, newer.version)
        try:
            # Read again under the lease: another replica may have stored it (and let go)
            # between the first read and the lease.
            copy = self._copy(normalized)
            if copy is not None and copy.upstream not in self.upstreams:
                return self._as_stored(copy)
            if (fresh := self._if_fresh(copy)) is not None:
                return fresh
            if copy is not None:
                return self._revalidate(normalized, self.upstreams[copy.upstream], copy, route)
            for name in route.upstreams:
                found = self._first_fetch(normalized, self.upstreams[name], route)
                if found is not None:
                    return found
            return None
        finally:
            leases.release(self.engine, lease)

    def _as_stored(self, copy: _Copy) -> Proxied:
        age = (datetime.now(UTC) - copy.fetched_at).total_seconds()
        return Proxied(loads(copy.page), copy.upstream, copy.version, fresh_for=self.ttl - age)

    def _if_fresh(self, copy: _Copy | None) -> Proxied | None:
        """The stored page, when it is still fresh."""
        if copy is None or not self._fresh(copy.fetched_at):
            return None
        return self._as_stored(copy)

    def _copy(self, normalized: str) -> _Copy | None:
        with read_session(self.engine) as s:
            row = stored(s, normalized)
            if row is None:
                return None
            return _Copy(row.upstream, row.version, row.etag, row.page, row.upstream_serial,
                         _aware(row.fetched_at))  # fmt: skip

    def _wait_for_other_replica(self, normalized: str, copy: _Copy | None,
                                lease: str) -> _Copy | None:  # fmt: skip
        """Poll (bounded by the lease's life) for the page another replica is fetching; None
        when it ended without storing a newer one (then this replica fetches)."""

        def newer() -> _Copy | None:
            found = self._copy(normalized)
            if found is not None and (copy is None or found.fetched_at > copy.fetched_at):
                return found
            return None

        deadline = time.monotonic() + self.lease_ttl
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if not leases.held(self.engine, lease):
                # Read after the lease is gone: the holder stores before it lets go.
                return newer()  # None: it ended (or died) without storing anything newer
            found = newer()
            if found is not None:
                return found
        return None

    def _audit(self, normalized: str, upstream: Upstream, route: Route, outcome: str,
               s: Session | None = None) -> None:  # fmt: skip
        def write(s: Session) -> None:
            audit.record(s, project=normalized, upstream=upstream.name, kind="page",
                         url=upstream.page_url(normalized), decision=route.reason,
                         outcome=outcome)  # fmt: skip

        if s is not None:
            write(s)
        else:
            retrying(self.engine, write)

    def _first_fetch(self, normalized: str, upstream: Upstream, route: Route) -> Proxied | None:
        try:
            answer = self.client.page(upstream, normalized, None)
        except UpstreamError as exc:
            self._failed(upstream)
            self._audit(normalized, upstream, route, f"failed: {exc}")
            raise unavailable(normalized, str(exc)) from None
        if answer.status in (404, 410):
            self._audit(normalized, upstream, route, f"not found ({answer.status})")
            return None
        if answer.status != 200:
            if answer.status >= 500:
                self._failed(upstream)
            self._audit(normalized, upstream, route, f"failed: answered {answer.status}")
            raise unavailable(normalized, f"{upstream.name} answered {answer.status}")
        try:
            project = parse(answer.body, answer.headers.get("content-type", ""), answer.url,
                            normalized)  # fmt: skip
        except PageError as exc:
            self._audit(normalized, upstream, route, f"refused: {exc}")
            raise unavailable(normalized, f"{upstream.name} sent a page that is not one") from None
        return self._store(normalized, upstream, project, answer.headers.get("etag"), route)

    def _revalidate(self, normalized: str, upstream: Upstream, copy: _Copy,
                    route: Route) -> Proxied | None:  # fmt: skip
        def stale(why: str) -> Proxied:
            log.warning("proxy: serving a stored %s: %s", normalized, why)
            self._audit(normalized, upstream, route, f"stale: {why}")
            return Proxied(loads(copy.page), upstream.name, copy.version, warning=why)

        try:
            answer = self.client.page(upstream, normalized, copy.etag)
        except UpstreamError as exc:
            self._failed(upstream)
            return stale(str(exc))
        if answer.status == 304:
            retrying(self.engine, lambda s: _touch(s, normalized))
            return Proxied(loads(copy.page), upstream.name, copy.version, fresh_for=self.ttl)
        if answer.status in (404, 410):

            def forget(s: Session) -> None:
                _forget(s, normalized)
                self._audit(normalized, upstream, route, f"gone ({answer.status})", s)

            retrying(self.engine, forget)
            return None
        if answer.status != 200:
            if answer.status >= 500:
                self._failed(upstream)
            return stale(f"{upstream.name} answered {answer.status}")
        try:
            project = parse(answer.body, answer.headers.get("content-type", ""), answer.url,
                            normalized)  # fmt: skip
        except PageError as exc:
            return stale(f"{upstream.name} sent a page that is not one ({exc})")
        serial = copy.upstream_serial
        if serial is not None and project.serial is not None and project.serial < serial:
            return stale(f"{upstream.name}'s serial went back from {serial} to {project.serial}")
        return self._store(normalized, upstream, project, answer.headers.get("etag"), route)

    def _store(self, normalized: str, upstream: Upstream, project: UpstreamProject,
               etag: str | None, route: Route) -> Proxied:  # fmt: skip
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
                outcome = f"stored: {len(project.files)} files, serial {project.serial}"
                if project.unhashed:
                    outcome += f", {project.unhashed} without a sha256 left out"
                self._audit(normalized, upstream, route, outcome, s)
            row.etag, row.upstream_serial, row.fetched_at = etag, project.serial, now
            return row.version

        version = retrying(self.engine, work)
        if project.unhashed:
            log.warning("proxy: %s lists %d file(s) of %s without a sha256; left out",
                        upstream.name, project.unhashed, normalized)  # fmt: skip
        return Proxied(project, upstream.name, version, fresh_for=self.ttl)


@dataclass(frozen=True)
class _Copy:
    upstream: str
    version: int
    etag: str | None
    page: str
    upstream_serial: int | None
    fetched_at: datetime


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
