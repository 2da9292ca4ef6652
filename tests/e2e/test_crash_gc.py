"""Crash consistency: real ``pallet serve`` processes are SIGKILLed in the middle of 50
concurrent uploads (legacy form uploads and two-file Upload 2.0 releases with pre-signed PUTs),
several rounds, restarted on the same data. Then, with nothing uploading, ``pallet gc --grace 0``
and ``pallet fsck``:

- no lost file: every upload the server acknowledged is listed and downloads intact;
- no partial file: every listed file downloads with the bytes that were sent, and an Upload 2.0
  release is visible with all of its files or none;
- no orphan after gc: every blob in the store is referenced, nothing is left under ``staging/``
  or ``trash/``, and fsck is clean.

A kill between "blob stored" and "row committed" leaves orphan blobs (the counts are printed:
``pytest -s``); before garbage collection collected them, they stayed for good. The grace period
is forced with ``--grace 0``: never a sleep against the wall clock.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.api.uploads import form_for
from tests.dists import make_wheel
from tests.e2e.support import (
    RUNNING,
    PostgresDatabases,
    Server,
    free_port,
    pallet_command,
    start_server,
    wait_healthy,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

V2 = "application/vnd.pypi.upload.v2+json"
META = {"meta": {"api-version": "2.0"}}
JOBS = 50  # concurrent uploads per round
V2_EVERY = 3  # one job in three is a two-file Upload 2.0 release, the others legacy uploads
ROUNDS = 6  # kill rounds, as long as they fit in ROUNDS_BUDGET seconds (at least MIN_ROUNDS)
MIN_ROUNDS = 3
ROUNDS_BUDGET = 24.0
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


@dataclass
class Job:
    project: str
    version: str
    files: list[Path]
    v2: bool
    persistent: bool  # retries after a failure (the others give up)
    acknowledged: bool = False
    session_url: str | None = None
    failure: str = ""


@dataclass
class Tally:
    started: int = 0
    acknowledged: int = 0
    interrupted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self) -> None:
        with self.lock:
            self.acknowledged += 1


def build_jobs(root: Path, rnd: int) -> list[Job]:
    rng = random.Random(rnd)  # noqa: S311 - sizes, not secrets
    jobs = []
    for i in range(JOBS):
        v2 = i % V2_EVERY == 0
        # A first release's session reserves its name: one project per Upload 2.0 release.
        project = f"crash-v{rnd}-{i}" if v2 else f"crash-l{i}"
        version = f"{rnd}.0"
        folder = root / f"r{rnd}" / project
        tags = ("py3-none-any", "py2-none-any") if v2 else ("py3-none-any",)
        files = [
            make_wheel(
                folder,
                project,
                version,
                tag=tag,
                files={
                    f"{project.replace('-', '_')}/blob.bin": os.urandom(rng.randint(64, 384) * 1024)
                },
                compression=zipfile.ZIP_STORED,
            )
            for tag in tags
        ]
        jobs.append(Job(project, version, files, v2, persistent=i % 4 < 2))
    return jobs


class Uploads:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token
        self.http = httpx.Client(
            timeout=15,
            limits=httpx.Limits(max_connections=JOBS + 10, max_keepalive_connections=0),
        )

    @property
    def v2_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": V2, "Accept": V2}

    def post_v2(self, url: str, body: dict | None = None) -> httpx.Response:
        return self.http.post(
            url, content=json.dumps({**META, **(body or {})}), headers=self.v2_headers
        )

    def answered(self, job: Job, step: str, r: httpx.Response, ok: int) -> bool:
        if r.status_code != ok:
            job.failure = f"{step}: {r.status_code} {r.text[:300]}"
        return r.status_code == ok

    def legacy(self, job: Job) -> bool:
        path = job.files[0]
        r = self.http.post(
            f"{self.base}/legacy/",
            data=form_for(path, job.project, job.version),
            files={"content": (path.name, path.read_bytes(), "application/octet-stream")},
            auth=("__token__", self.token),
        )
        return self.answered(job, "legacy upload", r, 200)

    def upload2(self, job: Job) -> bool:
        if job.session_url is not None:  # a retry
            earlier = self.http.get(self.base + job.session_url, headers=self.v2_headers)
            if earlier.status_code == 200 and earlier.json()["status"] == "published":
                return True  # committed; the answer was lost in the kill
            self.http.delete(self.base + job.session_url, headers=self.v2_headers)  # abandoned
        create = {"name": job.project, "version": job.version}
        r = self.post_v2(f"{self.base}/upload/2.0/", create)
        if r.status_code == 409 and "location" in r.headers:
            self.http.delete(r.headers["location"], headers=self.v2_headers)
            r = self.post_v2(f"{self.base}/upload/2.0/", create)
        if not self.answered(job, "create session", r, 201):
            return False
        session = r.json()
        job.session_url = httpx.URL(session["links"]["session"]).path  # the port changes
        for path in job.files:
            data = path.read_bytes()
            body = {
                "filename": path.name,
                "size": len(data),
                "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                "mechanism": "vnd-pallet-presigned-put",
            }
            fs = self.post_v2(session["links"]["upload"], body)
            if not self.answered(job, "create file", fs, 202):
                return False
            m = fs.json()["mechanism"]
            put = self.http.put(m["url"], content=data, headers=m["headers"])
            # 412: the bytes are at their content address already (a killed attempt's PUT
            # went through); ``complete`` verifies them, as ``pallet publish`` relies on.
            if put.status_code != 412 and not self.answered(job, "PUT", put, 200):
                return False
            done = self.post_v2(fs.json()["links"]["complete"])
            if not self.answered(job, "complete", done, 201):
                return False
        published = self.post_v2(session["links"]["publish"])
        return self.answered(job, "publish", published, 201)

    def run(self, job: Job, tally: Tally) -> None:
        try:
            ok = self.upload2(job) if job.v2 else self.legacy(job)
        except httpx.HTTPError:
            with tally.lock:
                tally.interrupted += 1
            return
        if ok:
            job.acknowledged = True
            tally.ack()

    def close(self) -> None:
        self.http.close()


@dataclass
class Crashing:
    """One index (data dir, database, store) and the server currently running on it."""

    base: Path
    database_url: str | None
    extra_args: tuple[str, ...]
    server: Server | None = None
    token: str = ""

    def start(self) -> Server:
        """The first start mints the upload token; restarts only wait for health."""
        if self.server is None:
            self.server = start_server(
                self.base, database_url=self.database_url, extra_args=self.extra_args
            )
            self.token = self.server.token
            return self.server
        port = free_port()
        cmd = [*pallet_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--data-dir", str(self.server.data_dir), *self.extra_args]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        log_path = self.base / f"serve-{port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PALLET_")}
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        self.server = Server(
            port, self.server.data_dir, self.database_url, log_path, process, self.token
        )
        RUNNING.append(self.server)
        wait_healthy(self.server)
        return self.server

    def kill(self) -> None:
        assert self.server is not None
        self.server.process.kill()  # SIGKILL to the PID we started, nothing else
        self.server.process.wait(timeout=10)
        self.server.stop()  # forgets it

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def cli(self, *args: str) -> str:
        assert self.server is not None
        storage = [a for a in self.extra_args if a.startswith("s3://")]
        extra = ["--storage-url", storage[0]] if storage else []
        result = self.server.cli(*args, *extra, timeout=120)
        assert result.returncode in (0, 1), result.stderr
        return result.stdout


@pytest.fixture(params=["local", "s3"])
def crashing(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database: PostgresDatabases | None,
    monkeypatch: pytest.MonkeyPatch,
):  # noqa: ANN201
    extra: tuple[str, ...] = ("--gc-interval", "0")
    if request.param == "s3":
        weed = request.getfixturevalue("seaweedfs")
        for key, value in weed.env().items():
            monkeypatch.setenv(key, value)
        extra += ("--storage-url", f"s3://{weed.new_bucket()}?endpoint_url={weed.endpoint}")
    url = database.create() if database else None
    index = Crashing(tmp_path / "index", url, extra)
    try:
        yield index
    finally:
        index.stop()


def listed(http: httpx.Client, base: str, project: str) -> dict[str, str]:
    r = http.get(f"{base}/simple/{project}/", headers={"Accept": SIMPLE_JSON})
    if r.status_code == 404:
        return {}
    assert r.status_code == 200, r.text
    return {f["filename"]: f["url"] for f in r.json()["files"]}


def test_sigkill_mid_upload_loses_nothing_and_gc_leaves_no_orphans(crashing, tmp_path):
    started = time.monotonic()
    jobs: list[Job] = []
    acknowledged_per_round = []
    for rnd in range(1, ROUNDS + 1):
        if rnd > MIN_ROUNDS and time.monotonic() - started > ROUNDS_BUDGET:
            break
        server = crashing.start()
        uploads = Uploads(server.url, crashing.token)
        retry = [j for j in jobs if not j.acknowledged and j.persistent]
        fresh = build_jobs(tmp_path / "dists", rnd)
        jobs += fresh
        tally = Tally()
        pool = ThreadPoolExecutor(JOBS + len(retry))
        try:
            for job in [*fresh, *retry]:
                pool.submit(uploads.run, job, tally)
            # Kill at a moment when some uploads are through and the others anywhere: spooling,
            # verifying, storing blobs, waiting to commit, between Upload 2.0 steps.
            time.sleep(random.Random(rnd).uniform(0.4, 2.0))  # noqa: S311 - a moment, not a secret
            crashing.kill()
        finally:
            pool.shutdown(wait=True)
            uploads.close()
        acknowledged_per_round.append(tally.acknowledged)

    # Restart. Persistent clients retry until done; the others give up (canceling their Upload
    # 2.0 session), leaving whatever the kill left.
    server = crashing.start()
    uploads = Uploads(server.url, crashing.token)

    def finish(job: Job) -> None:
        if job.v2 and job.session_url:
            url = server.url + job.session_url
            status = uploads.http.get(url, headers=uploads.v2_headers)
            if status.status_code == 200 and status.json()["status"] == "published":
                job.acknowledged = True  # committed; the answer was lost in the kill
                return
            if not job.persistent:
                uploads.http.delete(url, headers=uploads.v2_headers)
        if job.persistent:
            uploads.run(job, Tally())
            assert job.acknowledged, f"retry of {job.project} {job.version}: {job.failure}"

    try:
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(finish, [j for j in jobs if not j.acknowledged]))
    finally:
        uploads.close()

    # No lost file and no partial file.
    http = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=16))
    visible: dict[str, httpx.URL] = {}

    def page(project: str) -> dict[str, httpx.URL]:
        base = httpx.URL(f"{server.url}/simple/{project}/")
        return {f: base.join(url) for f, url in listed(http, server.url, project).items()}

    expected = {p.name: p for j in jobs for p in j.files}

    def intact(item: tuple[str, httpx.URL]) -> bool:
        got = http.get(item[1])
        return got.status_code == 200 and got.content == expected[item[0]].read_bytes()

    try:
        with ThreadPoolExecutor(16) as pool:
            for found in pool.map(page, sorted({j.project for j in jobs})):
                visible.update(found)
            broken = sum(not ok for ok in pool.map(intact, visible.items()))
    finally:
        http.close()
    lost = sum(j.acknowledged and not all(p.name in visible for p in j.files) for j in jobs)
    partial = broken + sum(  # + Upload 2.0 releases half visible
        any(p.name in visible for p in j.files) and not all(p.name in visible for p in j.files)
        for j in jobs
    )

    data = server.data_dir

    def leftovers() -> int:  # spool files and temporary copies of killed requests
        return sum(
            1
            for folder in (data / "tmp", data / "blobs" / ".tmp")
            if folder.is_dir()
            for path in folder.iterdir()
            if path.is_file()
        )

    before = json.loads(crashing.cli("fsck", "--json", "--quick", "--grace", "0"))
    orphans_before = len(before["orphans"]) + len(before["staging"])
    leftovers_before = leftovers()
    gc = json.loads(crashing.cli("gc", "--grace", "0", "--json"))
    after = json.loads(crashing.cli("fsck", "--json", "--grace", "0"))
    summary = {
        "backend": "s3" if any(a.startswith("s3://") for a in crashing.extra_args) else "local",
        "database": "postgresql" if crashing.database_url else "sqlite",
        "rounds": len(acknowledged_per_round),
        "acknowledged_per_round": acknowledged_per_round,
        "uploads": len(jobs),
        "acknowledged": sum(j.acknowledged for j in jobs),
        "visible_files": len(visible),
        "lost": lost,
        "partial": partial,
        "orphans_before_gc": orphans_before,
        "orphan_blobs_before_gc": len(before["orphans"]),
        "spool_leftovers_before_gc": leftovers_before,
        "gc": {k: v for k, v in gc.items() if v},
        "orphans_after_gc": len(after["orphans"]) + len(after["staging"]) + len(after["trash"]),
        "spool_leftovers_after_gc": leftovers(),
        "fsck_problems": after["problems"],
        "seconds": round(time.monotonic() - started, 1),
    }
    print("\ncrash rounds:", json.dumps(summary))
    assert orphans_before + leftovers_before > 0, "the kills left nothing behind: no test"
    assert lost == 0 and partial == 0, summary
    assert summary["spool_leftovers_after_gc"] == 0, summary
    assert after["clean"] and summary["orphans_after_gc"] == 0, after
    assert after["missing"] == [] and after["mismatched"] == []
    assert after["blobs"] == after["verified"] > 0


def test_sigkill_during_pallet_import_leaves_orphans_gc_collects(
    tmp_path: Path, database: PostgresDatabases | None
):
    """``pallet import`` stores a batch's blobs before the batch's transaction: killed in
    between, it leaves blobs no row names (the same class as a killed upload)."""
    data = tmp_path / "data"
    url = database.create() if database else None
    where = ["--data-dir", str(data), *(["--database-url", url] if url else [])]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALLET_")}

    def pallet(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*pallet_command(), *args, *where],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )

    def wheels(folder: Path, names: range) -> Path:
        for n in names:
            make_wheel(folder, f"imported-{n}", "1.0", files={"x/blob.bin": os.urandom(4096)})
        return folder

    first = pallet("import", "--quiet", "--init", str(wheels(tmp_path / "first", range(5))))
    assert first.returncode == 0, first.stdout + first.stderr
    many = wheels(tmp_path / "many", range(5, 225))  # a batch of 200 and the rest
    blobs = data / "blobs" / "sha256"

    def stored() -> int:
        return sum(1 for p in blobs.rglob("*") if p.is_file())

    with (tmp_path / "import.log").open("wb") as log:
        process = subprocess.Popen(
            [*pallet_command(), "import", "--quiet", str(many), *where],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        # Of the first batch's 200 wheels and their METADATA, 150 blobs stored, none committed.
        while stored() < 10 + 150 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        process.kill()  # SIGKILL to the PID we started
        process.wait(timeout=10)

    def fsck(*args: str) -> dict:
        result = pallet("fsck", "--json", "--grace", "0", *args)
        assert result.returncode in (0, 1), result.stderr
        return json.loads(result.stdout)

    before = fsck("--quick")
    assert len(before["orphans"]) >= 100, before["orphans"][:3]
    gc = pallet("gc", "--grace", "0", "--json")
    assert gc.returncode == 0, gc.stderr
    collected = json.loads(gc.stdout)
    assert collected["orphans_trashed"] == collected["trash_purged"] == len(before["orphans"])
    again = pallet("import", "--quiet", "--json", str(many))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["imported"] == 220
    done = fsck()
    assert done["clean"] and done["orphans"] == done["trash"] == [], done
    assert done["blobs"] == done["verified"] == 450  # 225 wheels and their METADATA
    print(
        "\nimport crash:",
        json.dumps({"orphans_before_gc": len(before["orphans"]), "after_gc": 0, "reimported": 220}),
    )
