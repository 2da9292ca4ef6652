"""Three replicas of ``pallet serve`` over one PostgreSQL and one bucket, behind nginx, under load,
races, replica kills and outages of PostgreSQL and SeaweedFS (issue 11, "How it is checked").

One test runs the phases in order on one cluster (they share it, and ``pytest -n`` must not split
them over workers). A phase records what it finds in ``Findings`` rather than stopping at the
first failed check, so one run shows every problem; the test fails at the end if there is any.
The ledger holds every file a client reported as published; after each phase the index must
hold exactly the ledger: every file listed once, with its sha256, through nginx and on every
replica, and downloadable from every replica with those bytes.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.cluster.cluster import (
    CLIENT_DEADLINE,
    CLIENT_KINDS,
    SIMPLE_JSON,
    START_TIMEOUT,
    ClientRun,
    Cluster,
    Replica,
    run_client,
    sha256_file,
    wait_for,
)
from tests.dists import make_sdist, make_wheel
from tests.e2e.support import client_env

#: The whole module, cluster start and stop included, within 5 minutes (more only where a slow
#: machine is told so with PALLET_CLUSTER_TIMEOUT).
TIMEOUT = int(os.environ.get("PALLET_CLUSTER_TIMEOUT", "300"))
TEARDOWN = 30  # seconds kept for ending every client, replica and server
pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT)]

LOAD_CLIENTS = 50
RACES = 20
KILLS = 10
HANG_BOUND = 30.0  # seconds: a request taking longer during an outage is a hung worker
RECOVERY_BOUND = 60.0  # seconds after the dependency is back
OUTAGE_SECONDS = 4.0  # how long PostgreSQL / SeaweedFS stay down
KILL_SETTLE = 30.0  # seconds after the last kill in which clients may still re-run
DEFERRED_PAYLOAD = 64 * 1024  # above the replicas' --deferred-complete-size (48K)
#: How a refused client shows the 409/400: the status itself, or the words `pallet publish`
#: prints only for a 409 answer to a new publishing session (one is open for that release).
REFUSAL = re.compile(r"\b(409|400)\b|a publishing session for \S+ \S+ is already open at")


# -------------------------------------------------------------------------------- bookkeeping


@dataclass
class Findings:
    """Failed checks with their evidence, per phase, and the figures of the run."""

    problems: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)  # the run's totals
    phases: dict = field(default_factory=dict)  # each phase's figures
    log: Path | None = None  # each finding is appended here at once (a timeout loses none)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, phase: str, message: str) -> None:
        with self.lock:
            self.problems.append(f"[{phase}] {message}")
            if self.log is not None:
                with self.log.open("a") as out:
                    out.write(f"[{phase}] {message}\n\n")

    def check(self, phase: str, ok: bool, message: str) -> bool:
        if not ok:
            self.fail(phase, message)
        return ok


@dataclass
class Ledger:
    """{project: {filename: sha256}} of every file a client reported as published."""

    files: dict[str, dict[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, project: str, digests: dict[str, str]) -> None:
        with self.lock:
            self.files.setdefault(project, {}).update(digests)

    def count(self) -> int:
        return sum(len(v) for v in self.files.values())


class Dists:
    """Small generated releases, each built once (the builders embed timestamps)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.counter = 0
        self.lock = threading.Lock()

    def release(self, project: str, *, deferred: bool = False, variant: str = "") -> list[Path]:
        """A wheel and an sdist of ``project`` 1.0; ``deferred``: the wheel is big enough to be
        verified in the background."""
        with self.lock:
            self.counter += 1
            directory = self.root / f"{project}-{variant or 'main'}-{self.counter}"
        directory.mkdir(parents=True)
        module = project.replace("-", "_")
        extra = {f"{module}/_variant.py": f"VARIANT = {variant!r}\n".encode()} if variant else {}
        if deferred:
            extra[f"{module}/payload.bin"] = os.urandom(DEFERRED_PAYLOAD)
        wheel = make_wheel(directory, project, "1.0", files=extra)
        if variant:
            return [wheel]
        return [wheel, make_sdist(directory, project, "1.0")]


# ------------------------------------------------------------------------------ verification


_local = threading.local()


def _client() -> httpx.Client:
    """One keep-alive client per thread."""
    if getattr(_local, "client", None) is None:
        _local.client = httpx.Client(timeout=30, follow_redirects=True)
    return _local.client


def listing(base: str, project: str) -> tuple[int, list[tuple[str, str, str]]]:
    """(status, [(filename, sha256, absolute url)]) of a PEP 691 project page."""
    page = f"{base}/simple/{project}/"
    r = _client().get(page, headers={"Accept": SIMPLE_JSON})
    if r.status_code != 200:
        return r.status_code, []
    files = r.json()["files"]
    return 200, [(f["filename"], f["hashes"]["sha256"], urljoin(page, f["url"])) for f in files]


def on(base: str, url: str) -> str:
    """``url``'s path and query on the server at ``base`` (a file URL, on one replica)."""
    parts = urlsplit(url)
    return f"{base}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def download_sha(url: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    with _client().stream("GET", url) as r:
        for chunk in r.iter_bytes():
            digest.update(chunk)
        return r.status_code, digest.hexdigest()


def check_index(
    cluster: Cluster,
    ledger: Ledger,
    findings: Findings,
    phase: str,
    *,
    projects: list[str] | None = None,
    download: set[str] | None = None,
) -> dict[str, int]:
    """The index holds exactly the ledger for ``projects`` (default: all), as listed through
    nginx and on every replica; the files of the ``download`` projects (default: all of them)
    download from every replica with the published bytes, the others from one replica each."""
    bases = [("nginx", cluster.url)] + [(r.name, r.url) for r in cluster.replicas]
    lost: set[tuple[str, str]] = set()
    extra: set[tuple[str, str]] = set()
    wanted = projects if projects is not None else list(ledger.files)

    def one(job: tuple[int, str]) -> list[str]:
        n, project = job
        errors = []
        expected = ledger.files.get(project, {})
        for where, base in bases:
            try:
                status, files = listing(base, project)
            except httpx.HTTPError as exc:
                errors.append(f"{where} /simple/{project}/: {exc!r}")
                continue
            if status == 404 and not expected:
                continue  # nothing published, nothing listed
            if status != 200:
                errors.append(f"{where} /simple/{project}/ answered {status}")
                lost.update((project, name) for name in expected)
                continue
            names = [name for name, _, _ in files]
            for name in {n for n in names if names.count(n) > 1}:
                errors.append(f"{where}: {name} listed {names.count(name)} times")
            got = {name: sha for name, sha, _ in files}
            for name, sha in expected.items():
                if name not in got:
                    lost.add((project, name))
                    errors.append(f"{where}: {name} (published) is not listed")
                elif got[name] != sha:
                    lost.add((project, name))
                    errors.append(f"{where}: {name} listed with sha256 {got[name]}, want {sha}")
            for name in set(got) - set(expected):
                extra.add((project, name))
                errors.append(f"{where}: {name} is listed but no client reported it published")
            if where != "nginx":
                continue
            every = download is None or project in download
            replicas = cluster.replicas if every else [cluster.replicas[n % len(cluster.replicas)]]
            for name, _sha, url in files:
                if name not in expected:
                    continue
                for replica in replicas:
                    direct = on(replica.url, url)
                    try:
                        status, got_sha = download_sha(direct)
                    except httpx.HTTPError as exc:
                        errors.append(f"{replica.name} download {name}: {exc!r}")
                        lost.add((project, name))
                        continue
                    if status != 200 or got_sha != expected[name]:
                        lost.add((project, name))
                        errors.append(
                            f"{replica.name} download {name}: {status}, sha256 {got_sha}, "
                            f"want {expected[name]}"
                        )
        return errors

    with ThreadPoolExecutor(8) as pool:
        for errors in pool.map(one, enumerate(wanted)):
            for error in errors:
                findings.fail(phase, error)
    return {"checked_files": sum(len(ledger.files.get(p, {})) for p in wanted), "lost": len(lost),
            "unexpected": len(extra)}  # fmt: skip


def run_gc(cluster: Cluster) -> list[dict]:
    """``pallet gc --grace 0`` from every replica's data dir (each has its own spool), with
    nothing uploading."""
    return [
        cluster.cli_json("gc", "--grace", "0", data_dir=r.base / "data") for r in cluster.replicas
    ]


def run_fsck(cluster: Cluster, findings: Findings, phase: str, *, grace: int | None) -> dict:
    """``pallet fsck`` on the shared database and bucket, from every replica's data dir (each
    has its own spool): no problems."""
    reports = []
    for replica in cluster.replicas:
        args = ["fsck"] + (["--grace", str(grace)] if grace is not None else [])
        report = cluster.cli_json(*args, data_dir=replica.base / "data")
        reports.append(report)
        findings.check(
            phase,
            report.get("problems") == 0,
            f"pallet fsck (from {replica.name}'s data dir) reports {report.get('problems')} "
            f"problem(s): "
            + json.dumps({k: report.get(k) for k in ("missing", "mismatched", "orphans",
                                                       "staging", "trash", "stray")})[:3000],
        )  # fmt: skip
    first = reports[0]
    return {
        "problems": max(r.get("problems", -1) for r in reports),
        "blobs": first.get("blobs"),
        "files": first.get("files"),
        "missing": len(first.get("missing", [])),
        "mismatched": len(first.get("mismatched", [])),
        "orphans": max(
            len(r.get("orphans", [])) + len(r.get("staging", [])) + len(r.get("trash", []))
            + len(r.get("stray", []))
            for r in reports
        ),
    }  # fmt: skip


# ------------------------------------------------------------------------------------ phases


def answers_between(cluster: Cluster, start: float, end: float) -> dict[str, int]:
    """Statuses nginx answered between two wall-clock times (its access log: ``$msec $status``);
    a 502 is a request that reached a replica as it died, or found every replica marked down."""
    counts: collections.Counter[str] = collections.Counter()
    for line in cluster.nginx.access_log.read_text().splitlines():
        msec, status = line.split(" ", 2)[:2]
        if start <= float(msec) <= end:
            counts[status] += 1
    return dict(sorted(counts.items()))


def wait_first(futures, timeout: float) -> None:  # noqa: ANN001
    wait_futures(list(futures), timeout=timeout, return_when=FIRST_COMPLETED)


def publish_many(
    jobs: list[tuple[str, str, str, list[Path]]],
    cluster: Cluster,
    env: dict[str, str],
    *,
    concurrency: int,
    retries: int = 0,
) -> list[tuple[str, ClientRun]]:
    """Run (project, kind, url, files) jobs ``concurrency`` at a time."""

    def one(job: tuple[str, str, str, list[Path]]) -> tuple[str, ClientRun]:
        project, kind, url, files = job
        return project, run_client(kind, url, cluster.token, files, env, retries=retries)

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, jobs))


def phase_load(cluster: Cluster, dists: Dists, env: dict, ledger: Ledger, findings: Findings):
    """50 concurrent clients through nginx, every way in; nothing may fail."""
    phase = "load"
    jobs = []
    for i in range(LOAD_CLIENTS):
        project = f"load-{i:03d}"
        kind = CLIENT_KINDS[i % len(CLIENT_KINDS)]
        jobs.append((project, kind, cluster.url, dists.release(project, deferred=i % 4 == 0)))
    began = time.monotonic()
    results = publish_many(jobs, cluster, env, concurrency=LOAD_CLIENTS)
    seconds = time.monotonic() - began
    for project, result in results:
        if findings.check(phase, result.ok, f"client failed:\n{result.describe()}"):
            ledger.add(project, result.digests())
    figures = check_index(cluster, ledger, findings, phase)
    by_kind = collections.Counter(r.kind for _, r in results if r.ok)
    findings.phases[phase] = {
        "clients": len(results), "ok": sum(r.ok for _, r in results),
        "files": sum(len(r.files) for _, r in results if r.ok), "by_kind": dict(by_kind),
        "seconds": round(seconds, 1), **figures,
    }  # fmt: skip


def phase_races(cluster: Cluster, dists: Dists, env: dict, ledger: Ledger, findings: Findings):
    """Two clients publish the same filename with different bytes through different replicas at
    the same moment: one wins, the other is refused (409/400) and its bytes are never served."""
    phase = "races"
    kinds = [k for k in CLIENT_KINDS]
    pairs = []
    for i in range(RACES):
        project = f"race-{i:03d}"
        a, b = (dists.release(project, variant=v)[0] for v in ("a", "b"))
        assert a.name == b.name
        ra, rb = cluster.replicas[i % 3], cluster.replicas[(i + 1) % 3]
        pairs.append(
            (
                project,
                (kinds[i % len(kinds)], ra.url, a),
                (kinds[(i * 3 + 1) % len(kinds)], rb.url, b),
            )
        )

    def race(pair):  # noqa: ANN001, ANN202
        project, left, right = pair
        barrier = threading.Barrier(2)

        def side(spec):  # noqa: ANN001, ANN202
            kind, url, path = spec
            barrier.wait(timeout=60)
            return run_client(kind, url, cluster.token, [path], env, check_url=False)

        with ThreadPoolExecutor(2) as pool:
            return project, list(pool.map(side, (left, right)))

    began = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(race, pairs))
    winners = refused = 0
    for project, runs in outcomes:
        ok = [r for r in runs if r.ok]
        detail = "\n".join(r.describe() for r in runs)
        if not findings.check(phase, len(ok) == 1, f"{project}: {len(ok)} winner(s)\n{detail}"):
            continue
        winners += 1
        winner = ok[0]
        loser = next(r for r in runs if not r.ok)
        if findings.check(
            phase,
            bool(REFUSAL.search(loser.output)),
            f"{project}: the loser's output shows no 409/400\n{loser.describe()}",
        ):
            refused += 1
        ledger.add(project, winner.digests())
    figures = check_index(cluster, ledger, findings, phase, projects=[p for p, _ in outcomes])
    findings.phases[phase] = {
        "races": len(outcomes), "one_winner": winners, "loser_refused_409_400": refused,
        "seconds": round(time.monotonic() - began, 1), **figures,
    }  # fmt: skip


def phase_kills(cluster: Cluster, dists: Dists, env: dict, ledger: Ledger, findings: Findings):
    """SIGKILLs of a random replica at random moments while clients publish through nginx (and
    re-run when their connection was cut); then GC and fsck: nothing lost, partial or orphaned."""
    phase = "kills"
    seed = int(os.environ.get("PALLET_CLUSTER_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)  # noqa: S311 - which replica, when: PALLET_CLUSTER_SEED replays it
    done = threading.Event()
    results: list[tuple[str, ClientRun]] = []
    lock = threading.Lock()
    counter = iter(range(10**6))
    kill_log: list[dict] = []

    retry_until = [float("inf")]  # re-runs stop this long after the last kill

    def publisher(worker: int) -> None:
        while not done.is_set():
            n = next(counter)
            project = f"kill-{n:03d}"
            kind = CLIENT_KINDS[n % len(CLIENT_KINDS)]
            files = dists.release(project, deferred=n % 3 == 0)
            result = run_client(
                kind, cluster.url, cluster.token, files, env, retries=8,
                stop_retrying=lambda: time.monotonic() > retry_until[0],
            )  # fmt: skip
            with lock:
                results.append((project, result))

    def revive(replica: Replica, k: int, killed_at: float) -> None:
        """Start the killed replica again on its port and wait until it is healthy."""
        replica.start()
        seconds = replica.wait_healthy()
        kill_log.append({"kill": k, "replica": replica.name,
                         "down_s": round(time.monotonic() - killed_at, 1),
                         "start_s": round(seconds, 1)})  # fmt: skip

    def killer() -> None:
        """A kill every 1-3 s of a replica that is serving; restarts run alongside, so two
        replicas may be down at once, never three."""
        restarts: dict[str, Future] = {}

        def serving() -> list[Replica]:
            return [
                r for r in cluster.replicas if r.name not in restarts or restarts[r.name].done()
            ]

        try:
            with ThreadPoolExecutor(len(cluster.replicas)) as restarters:
                for k in range(KILLS):
                    time.sleep(rng.uniform(1.0, 3.0))
                    while len(serving()) < 2:
                        wait_first(restarts.values(), timeout=START_TIMEOUT)
                    replica = rng.choice(serving())
                    if replica.name in restarts:
                        restarts[replica.name].result()  # re-raise a failed restart
                    replica.kill()
                    restarts[replica.name] = restarters.submit(revive, replica, k, time.monotonic())
                for restart in restarts.values():
                    restart.result()
        finally:
            retry_until[0] = time.monotonic() + KILL_SETTLE
            done.set()

    began, wall_began = time.monotonic(), time.time()
    with ThreadPoolExecutor(7) as pool:
        killing = pool.submit(killer)
        publishers = [pool.submit(publisher, w) for w in range(6)]
        killing.result()
        for f in publishers:
            f.result()
    cluster.all_healthy()
    for project, result in results:
        if findings.check(phase, result.ok, f"client failed despite re-runs:\n{result.describe()}"):
            ledger.add(project, result.digests())
    # Partial: a release of which some files are listed but not all, whatever the client said.
    partial = 0
    for project, result in results:
        status, files = listing(cluster.url, project)
        names = {name for name, _, _ in files}
        wanted = {f.name for f in result.files}
        if names and names != wanted:
            partial += 1
            findings.fail(phase, f"{project}: partial release, listed {sorted(names)}")
    figures = check_index(cluster, ledger, findings, phase, projects=[p for p, _ in results])
    gc = run_gc(cluster)
    fsck = run_fsck(cluster, findings, phase, grace=0)
    reruns = sum(r.attempts - 1 for _, r in results)
    nginx_statuses = answers_between(cluster, wall_began, time.time())
    findings.phases[phase] = {
        "kills": len(kill_log), "seed": seed, "kill_log": kill_log, "clients": len(results),
        "files": sum(len(r.files) for _, r in results if r.ok), "reruns": reruns,
        "partial": partial, "nginx_statuses": nginx_statuses, "gc": gc, "fsck": fsck,
        "seconds": round(time.monotonic() - began, 1), **figures,
    }  # fmt: skip


# ------------------------------------------------------------------------------------ outages


@dataclass
class Record:
    at: float
    what: str
    status: int | str  # an HTTP status, or the exception of a request that got no answer
    seconds: float
    retry_after: str | None
    detail: str = ""


class Traffic:
    """Continuous readers and uploaders through nginx, each request recorded. Uploads are legacy
    form POSTs of fresh wheels, re-sent until a 200 (identical re-uploads are idempotent)."""

    def __init__(
        self, cluster: Cluster, dists: Dists, ledger: Ledger, label: str, reads: list[tuple]
    ) -> None:
        self.cluster, self.dists, self.ledger, self.label = cluster, dists, ledger, label
        self.reads = reads  # (project, file url, sha256)
        self.records: list[Record] = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.uploaded = 0
        self.last_upload_ok = 0.0
        self.counter = iter(range(10**6))

    def _record(self, what: str, call: Callable[[], httpx.Response]) -> httpx.Response | None:
        began = time.monotonic()
        try:
            r = call()
        except httpx.HTTPError as exc:
            rec = Record(began, what, type(exc).__name__, time.monotonic() - began, None, str(exc))
            with self.lock:
                self.records.append(rec)
            return None
        rec = Record(
            began, what, r.status_code, time.monotonic() - began, r.headers.get("retry-after"),
            r.text[:300] if r.status_code >= 300 else "",
        )  # fmt: skip
        with self.lock:
            self.records.append(rec)
        return r

    def reader(self, n: int) -> None:
        rng = random.Random(n)  # noqa: S311 - which page to read
        with httpx.Client(timeout=HANG_BOUND) as client:
            while not self.stop_event.is_set():
                project, url, sha = rng.choice(self.reads)
                if rng.random() < 0.5:
                    page = f"{self.cluster.url}/simple/{project}/"
                    self._record(
                        "read-page", partial(client.get, page, headers={"Accept": SIMPLE_JSON})
                    )
                else:
                    r = self._record("read-file", partial(client.get, url))
                    if (
                        r is not None
                        and r.status_code == 200
                        and hashlib.sha256(r.content).hexdigest() != sha
                    ):
                        self._record_wrong_bytes(url)
                time.sleep(0.05)

    def _record_wrong_bytes(self, url: str) -> None:
        with self.lock:
            self.records.append(Record(time.monotonic(), "read-file", "wrong-bytes", 0, None, url))

    def uploader(self, n: int) -> None:
        with httpx.Client(timeout=HANG_BOUND) as client:
            while not self.stop_event.is_set():
                project = f"{self.label}-{n}-{next(self.counter):03d}"
                (wheel,) = self.dists.release(project, variant="x")
                fields = {
                    ":action": "file_upload", "protocol_version": "1", "metadata_version": "2.4",
                    "name": project, "version": "1.0", "filetype": "bdist_wheel",
                    "pyversion": "py3", "sha256_digest": sha256_file(wheel),
                }  # fmt: skip
                content = wheel.read_bytes()
                # Until it is in: stopping halfway would leave a file no one knows the fate of.
                deadline = time.monotonic() + RECOVERY_BOUND + 30
                while time.monotonic() < deadline:
                    r = self._record(
                        "upload",
                        partial(
                            client.post,
                            f"{self.cluster.url}/legacy/",
                            data=fields,
                            files={"content": (wheel.name, content, "application/octet-stream")},
                            auth=("__token__", self.cluster.token),
                        ),
                    )
                    if r is not None and r.status_code == 200:
                        self.ledger.add(project, {wheel.name: fields["sha256_digest"]})
                        with self.lock:
                            self.uploaded += 1
                            self.last_upload_ok = time.monotonic()
                        break
                    if r is not None and r.status_code not in (503, 502, 504):
                        break  # a refusal: recorded, and retrying cannot help
                    time.sleep(0.3)
                time.sleep(0.1)

    def start(self) -> None:
        for i in range(3):
            self.threads.append(threading.Thread(target=self.reader, args=(i,), daemon=True))
        for i in range(2):
            self.threads.append(threading.Thread(target=self.uploader, args=(i,), daemon=True))
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=RECOVERY_BOUND + HANG_BOUND + 40)


def reads_of(cluster: Cluster, ledger: Ledger, count: int = 20) -> list[tuple]:
    reads = []
    for project in list(ledger.files)[:count]:
        _, files = listing(cluster.url, project)
        reads += [(project, url, sha) for _, sha, url in files]
    return reads


def phase_outage(
    name: str,
    stop: Callable[[], None],
    start: Callable[[], None],
    cluster: Cluster,
    dists: Dists,
    env: dict,
    ledger: Ledger,
    findings: Findings,
) -> None:
    """``name`` goes down for OUTAGE_SECONDS under reads and uploads: only 2xx and 503 (with
    Retry-After), nothing hangs, service comes back by itself and nothing is lost. Two
    ``pallet publish`` runs started during the outage must ride through it with their retries."""
    phase = f"outage-{name}"
    before = set(ledger.files)
    traffic = Traffic(cluster, dists, ledger, f"out-{name}", reads_of(cluster, ledger))
    traffic.start()
    time.sleep(1.5)  # traffic flowing before the outage
    down_at = time.monotonic()
    stop()
    riders: list = []
    rider_pool = ThreadPoolExecutor(2)
    for i, mechanism in enumerate(("vnd-pallet-presigned-put", "http-post-bytes")):
        project = f"ride-{name}-{i}"
        files = dists.release(project)
        riders.append(
            (project, rider_pool.submit(
                run_client, f"pallet:{mechanism}", cluster.url, cluster.token, files, env
            ))
        )  # fmt: skip
    time.sleep(OUTAGE_SECONDS)
    start()
    up_at = time.monotonic()
    recovery = None

    def serving() -> bool:
        project = next(iter(ledger.files))
        for replica in cluster.replicas:
            if listing(replica.url, project)[0] != 200:
                return False
        return traffic.last_upload_ok > up_at

    try:
        recovery = wait_for(serving, RECOVERY_BOUND, f"service back after the {name} restart", 0.3)
    except TimeoutError as exc:
        findings.fail(phase, str(exc))
    time.sleep(1.0)
    traffic.stop()
    rider_pool.shutdown(wait=True)
    for project, future in riders:
        result = future.result()
        if not findings.check(
            phase,
            result.ok,
            f"pallet publish did not ride through the outage:\n{result.describe()}",
        ):
            # Make it whole again so later phases check a known state.
            result = run_client(
                result.kind, cluster.url, cluster.token, result.files, env, retries=3
            )
        if result.ok:
            ledger.add(project, result.digests())

    statuses = collections.Counter(str(r.status) for r in traffic.records)
    bad = [r for r in traffic.records if not (isinstance(r.status, int) and 200 <= r.status < 300)
           and r.status != 503]  # fmt: skip
    no_retry_after = [r for r in traffic.records if r.status == 503 and not r.retry_after]
    slow = [r for r in traffic.records if r.seconds > HANG_BOUND * 0.95]
    window = [r for r in traffic.records if down_at <= r.at <= up_at + (recovery or 0)]

    def show(records: list[Record]) -> str:
        return "\n".join(
            f"  t={r.at - down_at:+.1f}s {r.what} -> {r.status} in {r.seconds:.1f}s "
            f"retry-after={r.retry_after} {r.detail[:200]!r}"
            for r in records[:8]
        )

    findings.check(
        phase, not bad, f"{len(bad)} answer(s) other than 2xx/503 {dict(statuses)}:\n{show(bad)}"
    )
    findings.check(
        phase, not no_retry_after, f"{len(no_retry_after)} 503(s) without Retry-After:\n"
        + show(no_retry_after)
    )  # fmt: skip
    findings.check(
        phase, not slow, f"{len(slow)} request(s) took {HANG_BOUND:.0f}s or more:\n{show(slow)}"
    )
    fresh = {p for p in ledger.files if p not in before}
    figures = check_index(cluster, ledger, findings, phase, download=fresh)
    fsck = run_fsck(cluster, findings, phase, grace=None)
    findings.phases[phase] = {
        "requests": len(traffic.records), "statuses": dict(statuses),
        "during_outage": dict(collections.Counter(str(r.status) for r in window)),
        "uploads_ok": traffic.uploaded, "max_request_s": round(
            max((r.seconds for r in traffic.records), default=0), 1),
        "recovery_s": None if recovery is None else round(recovery, 1),
        "fsck_problems": fsck["problems"], **figures,
    }  # fmt: skip


# --------------------------------------------------------------------------------------- test


def test_cluster(cluster: Cluster, tmp_path: Path) -> None:
    findings = Findings(log=tmp_path / "cluster-findings.txt")
    ledger = Ledger()
    dists = Dists(tmp_path / "dists")
    env = client_env(tmp_path / "client")
    findings.figures["startup_s"] = round(cluster.startup_seconds, 1)
    # Clients stop before pytest-timeout strikes, so a slow run still fails with its findings.
    CLIENT_DEADLINE[0] = time.monotonic() + TIMEOUT - cluster.startup_seconds - TEARDOWN
    for problem in cluster.startup_problems:
        findings.fail("startup", problem)
    began = time.monotonic()

    def timed(name: str, step: Callable[[], None]) -> None:
        t = time.monotonic()
        failed = len(findings.problems)
        try:
            step()
        except Exception as exc:  # a crashed phase is a finding; the next ones still run
            findings.fail(name, f"phase crashed: {exc!r}")
        seconds = round(time.monotonic() - t, 1)
        findings.figures.setdefault("phase_s", {})[name] = seconds
        figures = findings.phases.get(name, {})
        print(
            f"\ncluster {name}: {seconds}s, {len(findings.problems) - failed} problem(s) {figures}",
            flush=True,
        )

    timed("load", lambda: phase_load(cluster, dists, env, ledger, findings))
    timed("races", lambda: phase_races(cluster, dists, env, ledger, findings))
    timed("kills", lambda: phase_kills(cluster, dists, env, ledger, findings))
    pg, weed = cluster.postgres, cluster.weed
    timed("outage-postgres", lambda: phase_outage(
        "postgres", pg.stop, pg.start, cluster, dists, env, ledger, findings))  # fmt: skip
    timed("outage-seaweedfs", lambda: phase_outage(
        "seaweedfs", weed.stop, weed.start, cluster, dists, env, ledger, findings))  # fmt: skip

    # The final word: GC with no grace, then fsck, then the whole ledger once more.
    gc = run_gc(cluster)
    fsck = run_fsck(cluster, findings, "final", grace=0)
    final = check_index(cluster, ledger, findings, "final", download=set())
    figures = findings.figures
    figures.update(
        files_published=ledger.count(),
        projects=len(ledger.files),
        races=findings.phases.get("races", {}).get("races", 0),
        kills=findings.phases.get("kills", {}).get("kills", 0),
        lost=final["lost"],
        partial=findings.phases.get("kills", {}).get("partial", 0) + final["unexpected"],
        orphans=fsck["orphans"],
        final_gc=gc,
        final_fsck=fsck,
        test_s=round(time.monotonic() - began, 1),
        problems=len(findings.problems),
    )
    summary = tmp_path / "cluster-summary.json"
    summary.write_text(
        json.dumps(
            {**figures, "phases": findings.phases, "findings": findings.problems},
            indent=2,
            default=str,
        )
    )
    print(
        f"\ncluster: files published {figures['files_published']}, races {figures['races']}, "
        f"kills {figures['kills']}, lost {figures['lost']} / partial {figures['partial']} / "
        f"orphans {figures['orphans']}, problems {len(findings.problems)} "
        f"(startup {figures['startup_s']}s, phases {figures.get('phase_s')}; {summary})"
    )
    assert not findings.problems, "\n\n".join(findings.problems[:60])
