"""The upstream proxy end to end: a real upstream Pallet holding real distributions, behind a
fault-injecting front that logs every request, and a proxying Pallet in front of both. Real
pip and uv install through the proxy alone.

The dependency-confusion test is the one that matters most: a private ``acme-utils`` 1.0 and a
claimed ``acme-*`` must win over the upstream's ``acme-utils`` 999.0 and hide its
``acme-newthing``, and the upstream must never even be asked for either name."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.corpus.fetch import ensure, load_manifest
from tests.dists import make_wheel
from tests.e2e.support import (
    Server,
    ServerFactory,
    describe,
    make_venv,
    run,
    tool,
)
from tests.upstream_faults import FaultyUpstream

REAL = ("six-1.17.0-py2.py3-none-any.whl", "idna-3.20-py3-none-any.whl")
BIG = 100 * 2**20  # the 100 MB
LEFT = 32 * 2**20  # a file whose first client leaves early


def _import(server: Server, *paths: Path) -> None:
    result = server.cli("import", "--quiet", *map(str, paths), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def upstream(server_factory: ServerFactory, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The upstream: a real Pallet with real downloaded distributions and two ``acme-*``
    projects, behind the fault-injecting front."""
    root = tmp_path_factory.mktemp("upstream-dists")
    real = [d for d in load_manifest() if d.filename in REAL]
    paths = ensure(real, log=lambda _msg: None)
    server = server_factory()
    big = make_wheel(root / "big", "big-blob", "1.0",
                     files={"big_blob/data.bin": os.urandom(BIG)},
                     compression=zipfile.ZIP_STORED)  # fmt: skip
    _import(
        server,
        *(paths[d.filename] for d in real),
        make_wheel(root / "a", "acme-utils", "999.0"),
        make_wheel(root / "b", "acme-newthing", "5.0"),
        make_wheel(root / "c", "needs-six", "2.0", requires_dist=["six>=1.16"]),
        big,
        make_wheel(
            root / "leaver",
            "left-behind",
            "1.0",
            files={"left_behind/data.bin": os.urandom(LEFT)},
            compression=zipfile.ZIP_STORED,
        ),  # fmt: skip
    )
    front = FaultyUpstream(server.url)
    try:
        yield front, big
    finally:
        front.close()


@pytest.fixture(scope="module")
def proxy(server_factory: ServerFactory, upstream, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN001, ANN201
    """The proxying Pallet: private ``acme-utils`` 1.0 and the ``acme-*`` namespace claimed;
    pages revalidated on every request (TTL 0), so each test sees the front's faults."""
    front, _big = upstream
    server = server_factory(
        extra_args=("--upstream", f"up={front.url}/simple/", "--upstream-page-ttl", "0",
                    "--upstream-retry-after", "0", "--upstream-stale-while-revalidate", "0")
        # every request revalidates, and sees the front's faults at once
    )  # fmt: skip
    _import(server, make_wheel(tmp_path_factory.mktemp("private"), "acme-utils", "1.0"))
    claimed = server.cli("claim", "acme-*")
    assert claimed.returncode == 0 and "claimed acme-*" in claimed.stdout, claimed.stderr
    return server


def _version(python: Path, project: str, env: dict[str, str]) -> str:
    code = f"import importlib.metadata as m; print(m.version({project!r}))"
    result = run([python, "-c", code], env=env)
    assert result.returncode == 0, describe(result)
    return result.stdout.strip().splitlines()[-1]


def _pip(python: Path, index: str, env: dict[str, str], *requirements: str):  # noqa: ANN202
    return run([python, "-m", "pip", "install", "--index-url", index, "--no-cache-dir",
                *requirements], env=env)  # fmt: skip


def _uv(python: Path, index: str, env: dict[str, str], *requirements: str):  # noqa: ANN202
    return run([tool("uv"), "pip", "install", "--python", python, "--index-url", index,
                *requirements], env=env)  # fmt: skip


def test_private_and_claimed_names_never_reach_the_upstream(
    proxy: Server, upstream, env: dict[str, str], tmp_path: Path
) -> None:
    front, _big = upstream
    pip_python = make_venv(tmp_path / "pip", env, pip=True)
    done = _pip(pip_python, proxy.simple_url, env, "acme-utils")
    assert done.returncode == 0, describe(done)
    assert _version(pip_python, "acme-utils", env) == "1.0"
    uv_python = make_venv(tmp_path / "uv", env)
    done = _uv(uv_python, proxy.simple_url, env, "acme-utils")
    assert done.returncode == 0, describe(done)
    assert _version(uv_python, "acme-utils", env) == "1.0"
    for install in (_pip, _uv):
        missing = install(pip_python, proxy.simple_url, env, "acme-newthing")
        assert missing.returncode != 0, describe(missing)
    assert httpx.get(f"{proxy.simple_url}acme-newthing/").status_code == 404
    assert front.asked_for("acme") == []  # not one request for either name


def test_upstream_projects_install_with_their_dependencies(
    proxy: Server, upstream, env: dict[str, str], tmp_path: Path
) -> None:
    front, _big = upstream
    pip_python = make_venv(tmp_path / "pip", env, pip=True)
    done = _pip(pip_python, proxy.simple_url, env, "needs-six", "idna", "acme-utils")
    assert done.returncode == 0, describe(done)
    assert _version(pip_python, "six", env) == "1.17.0"
    assert _version(pip_python, "idna", env) == "3.20"
    assert _version(pip_python, "acme-utils", env) == "1.0"  # the private one, in one tree
    uv_python = make_venv(tmp_path / "uv", env)
    done = _uv(uv_python, proxy.simple_url, env, "needs-six", "idna")
    assert done.returncode == 0, describe(done)
    requirements = tmp_path / "requirements.in"
    requirements.write_text("needs-six\nacme-utils\n")
    compiled = run([tool("uv"), "pip", "compile", "--index-url", proxy.simple_url,
                    str(requirements)], env=env)  # fmt: skip
    assert compiled.returncode == 0, describe(compiled)
    assert "six==1.17.0" in compiled.stdout and "acme-utils==1.0" in compiled.stdout
    assert front.asked_for("acme") == []


def test_pages_pass_upstream_data_through(proxy: Server, upstream) -> None:
    front, _big = upstream
    accept = {"Accept": "application/vnd.pypi.simple.v1+json"}
    theirs = httpx.get(f"{front.url}/simple/idna/", headers=accept).json()
    ours = httpx.get(f"{proxy.simple_url}idna/", headers=accept).json()
    assert ours["name"] == "idna"
    for mine, upstream_file in zip(ours["files"], theirs["files"], strict=True):
        for key in ("filename", "hashes", "requires-python", "size", "upload-time", "yanked",
                    "core-metadata"):  # fmt: skip
            assert mine[key] == upstream_file[key], key
        assert mine["url"].startswith("../../files/" + upstream_file["hashes"]["sha256"])
    # Served, and stored, but not listed: the list would tell anyone what this index installs.
    listed = httpx.get(proxy.simple_url, headers=accept).json()["projects"]
    assert "idna" not in {p["name"] for p in listed}


def test_files_are_stored_by_hash_and_served_from_the_store(proxy: Server, upstream) -> None:
    front, _big = upstream
    page = httpx.get(f"{proxy.simple_url}six/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()  # fmt: skip
    entry = page["files"][0]
    url = httpx.URL(f"{proxy.simple_url}six/").join(entry["url"])
    first = httpx.get(url)
    assert first.status_code == 200
    assert hashlib.sha256(first.content).hexdigest() == entry["hashes"]["sha256"]
    fetched = len(front.files_fetched())
    again = httpx.get(url)
    assert again.content == first.content
    assert len(front.files_fetched()) == fetched  # from the store, not the upstream
    blob = entry["hashes"]["sha256"]
    assert (proxy.data_dir / "blobs" / "sha256" / blob[:2] / blob[2:4] / blob).is_file()


@pytest.mark.parametrize("fault", ["corrupt", "truncate"])
def test_a_file_that_does_not_match_its_listing_is_never_stored(
    proxy: Server, upstream, tmp_path: Path, fault: str
) -> None:
    front, _big = upstream
    project = f"bad-bytes-{fault}"
    wheel = make_wheel(tmp_path, project, "1.0", files={"x/data.bin": os.urandom(300_000)},
                       compression=zipfile.ZIP_STORED)  # fmt: skip
    upstream_server = _server_behind(front)
    _import(upstream_server, wheel)
    page = httpx.get(f"{proxy.simple_url}{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()  # fmt: skip
    url = httpx.URL(f"{proxy.simple_url}{project}/").join(page["files"][0]["url"])
    sha = page["files"][0]["hashes"]["sha256"]
    front.fault = fault
    try:
        with pytest.raises(httpx.HTTPError):  # cut short: never a complete wrong body
            httpx.get(url).raise_for_status()
    finally:
        front.fault = None
    assert not (proxy.data_dir / "blobs" / "sha256" / sha[:2] / sha[2:4] / sha).exists()
    audit = proxy.cli("proxy-audit", "--project", project, "--json").stdout
    assert "refused" in audit and sha in audit
    good = httpx.get(url)
    assert good.status_code == 200 and hashlib.sha256(good.content).hexdigest() == sha


def test_an_upstream_that_needs_a_token_gets_it_and_no_log_shows_it(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """A private upstream, read with a token from the environment, through a failing page and a
    corrupt file: the token works, and neither the log, the audit log nor any URL holds it."""
    private = server_factory(private=True)
    wheel = make_wheel(tmp_path, "corp-lib", "1.0", files={"corp_lib/data.bin": os.urandom(300_000)},
                       compression=zipfile.ZIP_STORED)  # fmt: skip
    _import(private, wheel)
    token = private.create_token("--scope", "read", "--description", "proxy")
    front = FaultyUpstream(private.url)
    try:
        assert httpx.get(f"{front.url}/simple/corp-lib/").status_code == 401  # needs the token
        proxy = server_factory(
            extra_args=("--upstream", f"corp={front.url}/simple/", "--upstream-page-ttl", "0",
                        "--upstream-retry-after", "0", "--upstream-stale-while-revalidate", "0"),
            extra_env={"PALLET_UPSTREAM_CORP_TOKEN": token},
        )  # fmt: skip
        accept = {"Accept": "application/vnd.pypi.simple.v1+json"}
        page = httpx.get(f"{proxy.simple_url}corp-lib/", headers=accept)
        assert page.status_code == 200, page.text
        url = httpx.URL(f"{proxy.simple_url}corp-lib/").join(page.json()["files"][0]["url"])
        front.fault = "corrupt"
        try:
            with pytest.raises(httpx.HTTPError):
                httpx.get(url).raise_for_status()
            front.fault = "503"
            assert "warning" in httpx.get(f"{proxy.simple_url}corp-lib/").headers
        finally:
            front.fault = None
        assert httpx.get(url).status_code == 200
        audit = proxy.cli("proxy-audit", "--json")
        assert "refused" in audit.stdout and "stored" in audit.stdout
        assert "corp" in proxy.log(None)  # the failures were logged, naming the upstream
        for seen in (proxy.log(None), audit.stdout, audit.stderr, *front.paths):
            assert token not in seen
    finally:
        front.close()


def _server_behind(front: FaultyUpstream) -> Server:
    from tests.e2e.support import RUNNING

    return next(s for s in RUNNING if s.url == front.behind)


@pytest.mark.parametrize("fault", ["503", "drop"])
def test_an_outage_serves_the_stored_page_with_a_warning(
    proxy: Server, upstream, fault: str
) -> None:
    front, _big = upstream
    fresh = httpx.get(f"{proxy.simple_url}idna/")
    assert fresh.status_code == 200 and "warning" not in fresh.headers
    front.fault = fault
    try:
        stale = httpx.get(f"{proxy.simple_url}idna/")
        never_seen = httpx.get(f"{proxy.simple_url}never-fetched/")
    finally:
        front.fault = None
    assert stale.status_code == 200 and stale.content == fresh.content
    assert stale.headers["warning"].startswith("110 ")
    assert never_seen.status_code == 502
    assert never_seen.headers["content-type"] == "application/problem+json"
    assert never_seen.json()["status"] == 502


def test_a_serial_regression_is_refused(proxy: Server, upstream) -> None:
    front, _big = upstream
    accept = {"Accept": "application/vnd.pypi.simple.v1+json"}
    before = httpx.get(f"{proxy.simple_url}six/", headers=accept)
    front.fault = "regress"
    try:
        after = httpx.get(f"{proxy.simple_url}six/", headers=accept)
    finally:
        front.fault = None
    assert after.status_code == 200 and after.content == before.content
    assert "serial went back" in after.headers["x-pallet-stale"]


def test_concurrent_downloads_of_one_file_fetch_it_once(proxy: Server, upstream) -> None:
    front, big = upstream
    page = httpx.get(f"{proxy.simple_url}big-blob/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()  # fmt: skip
    url = httpx.URL(f"{proxy.simple_url}big-blob/").join(page["files"][0]["url"])
    expected = hashlib.sha256(big.read_bytes()).hexdigest()
    before = _peak_rss_mb(proxy)

    def download(_: int) -> str:
        digest = hashlib.sha256()
        with httpx.stream("GET", url, timeout=120) as r:
            assert r.status_code == 200
            for chunk in r.iter_bytes():
                digest.update(chunk)
        return digest.hexdigest()

    with ThreadPoolExecutor(20) as pool:
        digests = list(pool.map(download, range(20)))
    assert digests == [expected] * 20
    assert len([p for p in front.files_fetched() if big.name in p]) == 1
    # Memory stays flat: 20 clients of a 100 MiB file never hold it in memory, once or twenty
    # times: the server's peak resident size grows by less than half the file.
    grew = _peak_rss_mb(proxy) - before
    assert grew < BIG / 2**20 / 2, f"the peak RSS grew by {grew:.0f} MiB"


def test_a_download_its_first_client_leaves_is_finished_and_stored(proxy: Server, upstream) -> None:
    """The first client is fed from memory; when it hangs up, the download goes on for the
    store (and for anyone who joined), and the upstream is not asked again."""
    front, _big = upstream
    accept = {"Accept": "application/vnd.pypi.simple.v1+json"}
    page = httpx.get(f"{proxy.simple_url}left-behind/", headers=accept).json()
    url = httpx.URL(f"{proxy.simple_url}left-behind/").join(page["files"][0]["url"])
    expected = page["files"][0]["hashes"]["sha256"]
    with httpx.stream("GET", url, timeout=60) as r:
        assert r.status_code == 200
        next(r.iter_raw(2**20))  # a first piece, then the client hangs up

    def outcomes() -> list[str]:
        shown = proxy.cli("proxy-audit", "--project", "left-behind", "--json").stdout
        return [json.loads(line)["outcome"] for line in shown.splitlines()]

    deadline = time.monotonic() + 120  # bounded: the download itself takes well under a second
    while "stored" not in outcomes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "stored" in outcomes()
    again = httpx.get(url, timeout=60)
    assert again.status_code == 200
    assert hashlib.sha256(again.content).hexdigest() == expected
    assert len([p for p in front.files_fetched() if "left_behind" in p]) == 1


def _peak_rss_mb(server: Server) -> float:
    """The largest peak resident size (VmHWM) among the server's processes, in MiB."""
    pids = [server.process.pid]
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    peaks = []
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def test_offline_serves_only_what_is_stored(
    proxy: Server, upstream, server_factory: ServerFactory, env: dict[str, str], tmp_path: Path
) -> None:
    """A second process on the same index, offline: installs what the first one stored, asks
    the upstream nothing, and finds nothing it never stored."""
    front, _big = upstream
    warm = make_venv(tmp_path / "warm", env, pip=True)
    assert _pip(warm, proxy.simple_url, env, "six").returncode == 0
    asked = len(front.paths)
    offline = _same_index(proxy, server_factory, front, "--offline")
    python = make_venv(tmp_path / "offline", env, pip=True)
    done = _pip(python, offline.simple_url, env, "six")
    assert done.returncode == 0, describe(done)
    assert httpx.get(f"{offline.simple_url}never-fetched-either/").status_code == 404
    assert len(front.paths) == asked


def _same_index(proxy: Server, factory: ServerFactory, front: FaultyUpstream, *args: str) -> Server:
    from tests.e2e.support import start_server

    base = factory.base / f"same-index{len(factory.started)}"
    base.mkdir()
    (base / "data").symlink_to(proxy.data_dir)  # the same database and blobs, its own log
    extra = ("--upstream", f"up={front.url}/simple/", *args)
    server = start_server(base, database_url=proxy.database_url, extra_args=extra)
    factory.started.append(server)
    return server


def test_a_new_claim_holds_at_once(proxy: Server, upstream) -> None:
    front, _big = upstream
    assert httpx.get(f"{proxy.simple_url}idna/").status_code == 200
    assert proxy.cli("claim", "idna").returncode == 0
    try:
        asked = len(front.asked_for("idna"))
        assert httpx.get(f"{proxy.simple_url}idna/").status_code == 404
        assert len(front.asked_for("idna")) == asked
    finally:
        assert proxy.cli("claim", "--remove", "idna").returncode == 0
    assert json.loads(httpx.get(f"{proxy.simple_url}idna/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).content)["name"] == "idna"  # fmt: skip


def test_pep_658_metadata_is_fetched_checked_and_stored(
    proxy: Server, upstream, tmp_path: Path
) -> None:
    front, _big = upstream
    wheel = make_wheel(tmp_path, "with-metadata", "1.0")
    _import(_server_behind(front), wheel)
    accept = {"Accept": "application/vnd.pypi.simple.v1+json"}
    entry = httpx.get(f"{proxy.simple_url}with-metadata/", headers=accept).json()["files"][0]
    url = httpx.URL(f"{proxy.simple_url}with-metadata/").join(entry["url"] + ".metadata")
    meta_sha = entry["core-metadata"]["sha256"]
    front.fault = "corrupt"
    try:
        refused = httpx.get(url)
    finally:
        front.fault = None
    assert refused.status_code == 502
    assert not (
        proxy.data_dir / "blobs" / "sha256" / meta_sha[:2] / meta_sha[2:4] / meta_sha
    ).exists()
    good = httpx.get(url)
    assert good.status_code == 200 and hashlib.sha256(good.content).hexdigest() == meta_sha
    assert b"Name: with-metadata" in good.content
    fetched = len(front.asked_for(".metadata"))
    assert httpx.get(url).content == good.content
    assert len(front.asked_for(".metadata")) == fetched  # stored: not asked again


def test_the_audit_log_says_what_was_fetched_from_where(proxy: Server, upstream) -> None:
    front, _big = upstream
    accept = {"Accept": "application/vnd.pypi.simple.v1+json"}
    entry = httpx.get(f"{proxy.simple_url}idna/", headers=accept).json()["files"][0]
    assert httpx.get(httpx.URL(f"{proxy.simple_url}idna/").join(entry["url"])).status_code == 200
    shown = proxy.cli("proxy-audit", "--project", "idna", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    files = [r for r in rows if r["kind"] == "file" and r["outcome"] == "stored"]
    assert [r["sha256"] for r in files] == [entry["hashes"]["sha256"]]
    assert files[0]["decision"] == "unclaimed" and files[0]["url"].startswith(front.url)
    assert any(r["kind"] == "page" and r["outcome"].startswith("stored") for r in rows)
    everything = [
        json.loads(line) for line in proxy.cli("proxy-audit", "--json").stdout.splitlines()
    ]
    assert not [r for r in everything if r["project"].startswith("acme")]  # claimed: never fetched


def test_replicas_fetch_a_page_once_between_them(
    upstream, server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Two processes on one index ask for the same new project while the upstream holds its
    answer: one fetches (holding the page's lease), the other waits for what it stores."""
    front, _big = upstream
    _import(_server_behind(front), make_wheel(tmp_path, "asked-twice", "1.0"))
    first = server_factory(extra_args=("--upstream", f"up={front.url}/simple/"))
    second = _same_index(first, server_factory, front)
    front.gate.clear()
    front.fault = "hold"
    try:
        with ThreadPoolExecutor(2) as pool:
            answers = [pool.submit(httpx.get, f"{s.simple_url}asked-twice/", timeout=60)
                       for s in (first, second)]  # fmt: skip
            front.wait_until_asked("/simple/asked-twice/")
            front.fault = None
            front.gate.set()
            results = [a.result() for a in answers]
    finally:
        front.fault = None
        front.gate.set()
    assert [r.status_code for r in results] == [200, 200]
    assert results[0].content == results[1].content
    assert len(front.asked_for("/simple/asked-twice/")) == 1


def test_a_cached_page_still_obeys_a_new_claim_or_private_project(
    upstream, server_factory: ServerFactory, tmp_path: Path
) -> None:
    """With the page fresh and cached (answered without the app), a claim or a private
    upload made since is still honoured on the next request."""
    front, _big = upstream
    cached = server_factory(extra_args=("--upstream", f"up={front.url}/simple/"))
    for name in ("six", "idna"):
        first = httpx.get(f"{cached.simple_url}{name}/")
        assert first.status_code == 200
        asked = len(front.asked_for(f"/simple/{name}/"))
        assert httpx.get(f"{cached.simple_url}{name}/").content == first.content
        assert len(front.asked_for(f"/simple/{name}/")) == asked  # fresh: not asked again
    assert cached.cli("claim", "six").returncode == 0
    assert httpx.get(f"{cached.simple_url}six/").status_code == 404
    _import(cached, make_wheel(tmp_path, "idna", "0.1"))  # a private idna now
    ours = httpx.get(f"{cached.simple_url}idna/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()  # fmt: skip
    assert [f["filename"] for f in ours["files"]] == ["idna-0.1-py3-none-any.whl"]


def test_prefetch_fetches_and_pins_what_a_lockfile_names(
    proxy: Server, upstream, tmp_path: Path
) -> None:
    front, _big = upstream
    accept = {"Accept": "application/vnd.pypi.simple.v1+json"}
    theirs = httpx.get(f"{front.url}/simple/idna/", headers=accept).json()["files"][0]
    sha = theirs["hashes"]["sha256"]
    lockfile = tmp_path / "requirements.txt"
    lockfile.write_text(
        f"idna==3.20 --hash=sha256:{sha}\nnot-anywhere==1.0 --hash=sha256:{'0' * 64}\n"
    )
    done = proxy.cli("prefetch", str(lockfile), "--index-url", proxy.simple_url, "--pin")
    assert done.returncode == 1, done.stdout + done.stderr  # one pin is nowhere
    assert "1 of 2 files fetched" in done.stdout and "not-anywhere" in done.stderr
    blob = proxy.data_dir / "blobs" / "sha256" / sha[:2] / sha[2:4] / sha
    assert blob.is_file()
    assert "stored" in proxy.cli("proxy-audit", "--project", "idna").stdout
    unpinned = proxy.cli("prefetch", str(lockfile), "--unpin")
    assert unpinned.returncode == 0 and "1 pins" in unpinned.stdout  # it was pinned


def test_a_private_index_guards_proxied_projects_as_its_own(
    upstream, server_factory: ServerFactory
) -> None:
    front, _big = upstream
    private = server_factory(private=True, extra_args=("--upstream", f"up={front.url}/simple/"))
    asked = len(front.paths)
    assert httpx.get(f"{private.simple_url}six/").status_code == 401
    assert len(front.paths) == asked  # a stranger makes the upstream ask nothing
    token = private.create_token("--scope", "read")
    page = httpx.get(f"{private.simple_url}six/", auth=("__token__", token),
                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})  # fmt: skip
    assert page.status_code == 200
    url = httpx.URL(f"{private.simple_url}six/").join(page.json()["files"][0]["url"])
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, auth=("__token__", token)).status_code == 200


def test_a_failing_upstream_is_left_alone_for_a_while(
    upstream, server_factory: ServerFactory
) -> None:
    """After a failure, requests get the stored page (or a 502) at once, without asking the
    upstream again each, until --upstream-retry-after has passed."""
    front, _big = upstream
    patient = server_factory(extra_args=("--upstream", f"up={front.url}/simple/",
                                         "--upstream-page-ttl", "0",
                                         "--upstream-stale-while-revalidate", "0",
                                         "--upstream-retry-after", "3600"))  # fmt: skip
    fresh = httpx.get(f"{patient.simple_url}idna/")
    assert fresh.status_code == 200
    front.fault = "503"
    try:
        asked = len(front.paths)
        first = httpx.get(f"{patient.simple_url}idna/")
        assert len(front.paths) == asked + 1 and first.headers["warning"].startswith("110 ")
        again = httpx.get(f"{patient.simple_url}idna/")
        never = httpx.get(f"{patient.simple_url}never-stored/")
        assert len(front.paths) == asked + 1  # neither asked the upstream
    finally:
        front.fault = None
    assert again.status_code == 200 and again.content == fresh.content
    assert "asked again in" in again.headers["x-pallet-stale"]
    assert never.status_code == 502


def test_an_expired_page_is_answered_at_once_and_revalidated_behind(
    upstream, server_factory: ServerFactory, tmp_path: Path
) -> None:
    front, _big = upstream
    behind = _server_behind(front)
    _import(behind, make_wheel(tmp_path / "one", "swr-demo", "1.0"))
    quick = server_factory(extra_args=("--upstream", f"up={front.url}/simple/",
                                       "--upstream-page-ttl", "0",
                                       "--upstream-stale-while-revalidate", "3600"))  # fmt: skip
    url = f"{quick.simple_url}swr-demo/"
    first = httpx.get(url)
    assert "swr-demo-1.0" in first.text.replace("_", "-")
    _import(behind, make_wheel(tmp_path / "two", "swr-demo", "2.0"))
    stale = httpx.get(url)
    assert stale.content == first.content  # answered from the stored page, not held
    for _ in range(500):  # bounded: until the background revalidation has stored 2.0
        if "swr-demo-2.0" in httpx.get(url).text.replace("_", "-"):
            break
        threading.Event().wait(0.02)
    else:
        raise AssertionError("the page was never revalidated")
