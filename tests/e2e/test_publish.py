"""``pallet publish``, the Upload 2.0 client, run as a subprocess against live servers: Pallet on
the embedded local backend and on a real S3 (SeaweedFS), and a real pypiserver for the legacy
fallback."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.dists import make_large_wheel, make_sdist, make_wheel
from tests.e2e.support import (
    Server,
    ServerFactory,
    client_env,
    describe,
    free_port,
    http_get,
    listed,
    make_venv,
    pallet_command,
    run,
)

pytestmark = pytest.mark.e2e

MECHANISMS = ["http-post-bytes", "vnd-pallet-presigned-put", "vnd-pallet-s3multipart-presigned"]
MB = 10**6


def publish(
    server: Server | str, *args: str | Path, env: dict[str, str], token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``pallet publish --url <server> -t <token> ...``; also checks no secret was printed."""
    url = server if isinstance(server, str) else server.url
    token = token if token is not None else (server.token if isinstance(server, Server) else "x")
    cmd = [*pallet_command(), "publish", "--url", url, *args]
    if token:
        cmd += ["--token", token]
    result = run(cmd, env=env, timeout=300)
    assert_no_secrets(result.stdout, token)
    return result


def assert_no_secrets(output: str, token: str | None) -> None:
    if token and token.startswith("pallet_"):
        secret = token.split("_", 2)[2]  # pallet_<id>_<secret>; the secret may hold "_"
        assert len(secret) > 16 and secret not in output
    for marker in ("Signature=", "X-Amz-Credential", "X-Pallet-Expires"):
        assert marker not in output, output


def summary(result: subprocess.CompletedProcess[str]) -> dict:
    """The ``--json`` document: the last top-level JSON object in the output."""
    start = result.stdout.rfind("\n{")
    start = 0 if result.stdout.startswith("{") and start < 0 else start + 1
    return json.loads(result.stdout[start:])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def release(directory: Path, name: str, version: str = "1.0") -> list[Path]:
    """Three files: two wheels (different tags) and an sdist."""
    directory.mkdir(parents=True, exist_ok=True)
    return [
        make_wheel(directory, name, version),
        make_wheel(directory, name, version, tag="py2-none-any"),
        make_sdist(directory, name, version),
    ]


def authed_get(server: Server, url: str) -> dict:
    r = http_get(url, accept="application/vnd.pypi.upload.v2+json", token=server.token)
    assert r.status == 200, (url, r.status, r.body[:300])
    return json.loads(r.body)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_three_file_release_with_each_mechanism(
    backend_server: Server, mechanism: str, tmp_path: Path
) -> None:
    name = "trio-" + mechanism.rsplit("-", 1)[-1]
    files = release(tmp_path / "dist", name)
    result = publish(
        backend_server,
        "--mechanism",
        mechanism,
        "--json",
        str(tmp_path / "dist" / "*"),
        env=client_env(tmp_path),
    )
    assert result.returncode == 0, describe(result)
    doc = summary(result)
    assert doc["ok"] is True
    (rel,) = doc["releases"]
    assert (rel["name"], rel["version"], rel["protocol"], rel["status"]) == (
        name,
        "1.0",
        "2.0",
        "published",
    )
    assert rel["session"].startswith(backend_server.url + "/upload/2.0/sessions/")
    got = {f["filename"]: (f["mechanism"], f["status"], f["sha256"]) for f in rel["files"]}
    assert got == {f.name: (mechanism, "uploaded", sha256(f)) for f in files}
    assert listed(backend_server, name) == {f.name: sha256(f) for f in files}


def test_best_mechanism_is_chosen_by_size(backend_server: Server, tmp_path: Path) -> None:
    """Small files go straight to storage in one PUT; large ones as parallel multipart parts."""
    dist = tmp_path / "dist"
    small = make_wheel(dist, "sizes", "1.0")
    large = make_large_wheel(dist, "sizes", "1.0", 12 * MB, tag="py2.py3-none-any")
    result = publish(
        backend_server,
        "--json",
        "--multipart-threshold",
        "8M",
        small,
        large,
        env=client_env(tmp_path),
    )
    assert result.returncode == 0, describe(result)
    files = {f["filename"]: f for f in summary(result)["releases"][0]["files"]}
    assert files[small.name]["mechanism"] == "vnd-pallet-presigned-put"
    assert files[large.name]["mechanism"] == "vnd-pallet-s3multipart-presigned"
    assert files[large.name]["bytes_sent"] == large.stat().st_size
    assert listed(backend_server, "sizes") == {small.name: sha256(small), large.name: sha256(large)}


def test_stage_then_install_from_stage_then_publish(server: Server, tmp_path: Path) -> None:
    env = client_env(tmp_path)
    files = release(tmp_path / "dist", "staged-pkg", "2.0")
    staged = publish(server, "--stage", *files, env=env)
    assert staged.returncode == 0, describe(staged)
    assert listed(server, "staged-pkg") == {}, "a staged release must not be public"
    # The printed, ready-to-paste install line works as printed.
    line = next(x for x in staged.stdout.splitlines() if "pip install --extra-index-url" in x)
    stage_url = re.search(r"--extra-index-url (\S+)", line).group(1)
    assert "'staged-pkg==2.0'" in line
    python = make_venv(tmp_path / "venv", env, pip=True)
    got = run(
        [python, "-m", "pip", "install", "--index-url", server.simple_url]
        + ["--extra-index-url", stage_url, "staged-pkg==2.0"],
        env=env,
    )
    assert got.returncode == 0, describe(got)
    version = run([python, "-c", "import staged_pkg; print(staged_pkg.__version__)"], env=env)
    assert version.stdout.strip() == "2.0"

    session_url = re.search(r"pallet session publish (\S+)`", staged.stdout).group(1)
    status = run([*pallet_command(), "session", "status", session_url, "-t", server.token], env=env)
    assert status.returncode == 0 and "open" in status.stdout, describe(status)
    assert all(f.name in status.stdout for f in files)
    done = run([*pallet_command(), "session", "publish", session_url, "-t", server.token], env=env)
    assert done.returncode == 0, describe(done)
    assert listed(server, "staged-pkg") == {f.name: sha256(f) for f in files}
    assert http_get(f"{stage_url}staged-pkg/").status == 404  # the stage ends with its session


def test_session_cancel_discards_the_stage(server: Server, tmp_path: Path) -> None:
    env = client_env(tmp_path)
    files = release(tmp_path / "dist", "dropped")
    staged = publish(server, "--stage", "--json", *files, env=env)
    rel = summary(staged)["releases"][0]
    assert rel["status"] == "staged"
    assert http_get(f"{rel['stage']}dropped/").status == 200
    cancel = run(
        [*pallet_command(), "session", "cancel", rel["session"], "-t", server.token], env=env
    )
    assert cancel.returncode == 0 and "canceled" in cancel.stdout, describe(cancel)
    assert http_get(f"{rel['stage']}dropped/").status == 404
    assert listed(server, "dropped") == {}


def _stored_parts(server: Server, session_url: str, filename: str) -> tuple[dict[int, int], int]:
    """({part number: size} of the whole parts stored so far, number of parts) of the file's
    multipart upload, asked of the server."""
    link = authed_get(server, session_url)["files"][filename]["link"]
    mechanism = authed_get(server, link)["mechanism"]
    expected = {p["part-number"]: p["size"] for p in mechanism["parts"]}
    r = http_get(mechanism["parts_url"], token=server.token)
    assert r.status == 200, r.body
    stored = {p["part-number"]: p["size"] for p in json.loads(r.body)}
    return {n: size for n, size in stored.items() if expected.get(n) == size}, len(expected)


def test_resume_after_sigkill_sends_only_missing_parts(
    backend_server: Server, tmp_path: Path
) -> None:
    env = client_env(tmp_path)
    big = make_large_wheel(tmp_path, "resumable", "1.0", 300 * MB)
    cmd = [*pallet_command(), "publish", "--url", backend_server.url, "-t", backend_server.token]
    cmd += ["--mechanism", "vnd-pallet-s3multipart-presigned", "--part-jobs", "2"]
    cmd += ["--limit-rate", "60M", "--quiet", str(big)]
    proc = subprocess.Popen(
        cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        session_url = re.search(r"publishing session for resumable 1.0: (\S+)", line)
        assert session_url, line
        session_url = session_url.group(1)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            files = authed_get(backend_server, session_url)["files"]
            if (
                big.name in files
                and len(_stored_parts(backend_server, session_url, big.name)[0]) >= 4
            ):
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # A part whose body had fully arrived may still be landing in storage: wait until the
    # server's list is stable, so it says exactly what the resumed client will find.
    stored, total = _stored_parts(backend_server, session_url, big.name)
    for _ in range(20):
        time.sleep(0.5)
        again = _stored_parts(backend_server, session_url, big.name)[0]
        if again == stored:
            break
        stored = again
    assert 4 <= len(stored) < total, (stored, total)
    log_mark = len(backend_server.log(None).splitlines())

    resumed = publish(backend_server, "--resume", "--json", big, env=env)
    assert resumed.returncode == 0, describe(resumed)
    rel = summary(resumed)["releases"][0]
    assert rel["status"] == "published" and rel["session"] == session_url
    (entry,) = rel["files"]
    assert entry["status"] == "uploaded"
    assert entry["bytes_sent"] == big.stat().st_size - sum(stored.values())
    assert listed(backend_server, "resumable") == {big.name: sha256(big)}
    assert "Traceback" not in backend_server.log(None)  # the killed client is no server error
    if "--storage-url" not in backend_server.extra_args:  # parts PUT through Pallet: count them
        puts = [
            x
            for x in backend_server.log(None).splitlines()[log_mark:]
            if "PUT /_/blobs/" in x and ".parts/" in x
        ]
        assert len(puts) == total - len(stored), puts


def test_injected_503s_are_survived_by_retries(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    faults = [
        r"POST:/upload/2\.0/$",  # create session
        r"POST:/files/$",  # create file session
        r"PUT:/_/blobs/",  # the pre-signed PUT
        r"POST:/complete$",
        r"POST:/publish$",  # (the session is not read before it: publish answers with it)
    ]
    server = server_factory(extra_args=("--inject-503", ",".join(faults)))
    files = release(tmp_path / "dist", "flaky")
    result = publish(server, "--json", *files, env=client_env(tmp_path))
    assert result.returncode == 0, describe(result)
    assert summary(result)["releases"][0]["status"] == "published"
    assert result.stdout.count("retry:") >= len(faults), result.stdout
    assert server.log(None).count("injected 503") == len(faults)
    assert listed(server, "flaky") == {f.name: sha256(f) for f in files}


def test_releases_of_different_projects_go_in_parallel_and_one_projects_in_order(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Many one-file releases must not wait on each other's round trips; two releases of one
    new project must not race (the first reserves the name until it is published). Each
    publish is held ``processing`` for a while by the server, so "in parallel" is seen in the
    sessions' own timestamps: every project's session was opened before any was finished."""
    server = server_factory(extra_args=("--deferred-publish", "--processing-delay", "1.5"))
    dist = tmp_path / "dist"
    dist.mkdir()
    wheels = [make_wheel(dist, name, "1.0") for name in ("lane-a", "lane-b", "lane-c")]
    wheels.append(make_wheel(dist, "lane-a", "2.0"))
    result = publish(server, "--json", "-j", "4", *wheels, env=client_env(tmp_path))
    assert result.returncode == 0, describe(result)
    releases = summary(result)["releases"]
    assert [(r["name"], r["version"], r["status"]) for r in releases] == [
        ("lane-a", "1.0", "published"),
        ("lane-b", "1.0", "published"),
        ("lane-c", "1.0", "published"),
        ("lane-a", "2.0", "published"),
    ]
    from sqlalchemy import select

    from pallet.db.engine import make_engine
    from pallet.db.models import UploadSession

    engine = make_engine(server.database_url or f"sqlite:///{server.data_dir / 'pallet.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    UploadSession.normalized_name,
                    UploadSession.version,
                    UploadSession.created,
                    UploadSession.finished,
                )
            ).all()
    finally:
        engine.dispose()
    times = {(name, version): (created, finished) for name, version, created, finished in rows}
    firsts = [times[n, "1.0"] for n in ("lane-a", "lane-b", "lane-c")]
    assert max(c for c, _ in firsts) < min(f for _, f in firsts), times
    assert times["lane-a", "2.0"][0] >= times["lane-a", "1.0"][1], times


def test_interrupted_session_is_reported_and_publish_refuses_without_resume(
    server: Server, tmp_path: Path
) -> None:
    env = client_env(tmp_path)
    files = release(tmp_path / "dist", "reopen")
    first = publish(server, "--stage", "--json", files[0], env=env)
    assert first.returncode == 0, describe(first)
    again = publish(server, *files, env=env)
    assert again.returncode == 1
    assert "already open" in again.stdout and "--resume" in again.stdout
    assert "Traceback" not in again.stdout
    resumed = publish(server, "--resume", "--json", *files, env=env)
    assert resumed.returncode == 0, describe(resumed)
    statuses = {f["filename"]: f["status"] for f in summary(resumed)["releases"][0]["files"]}
    assert statuses == {
        files[0].name: "already-staged",
        files[1].name: "uploaded",
        files[2].name: "uploaded",
    }
    assert listed(server, "reopen") == {f.name: sha256(f) for f in files}


# --- legacy fallback -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pypiserver(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A real pypiserver (legacy upload only), authentication off."""
    packages = tmp_path_factory.mktemp("pypiserver-packages")
    port = free_port()
    exe = Path(sys.executable).parent / "pypi-server"
    log = (packages.parent / "pypiserver.log").open("wb")
    proc = subprocess.Popen(
        [exe, "run", "-i", "127.0.0.1", "-p", str(port), "-a", ".", "-P", ".", packages],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if http_get(f"{url}/simple/", timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "pypiserver did not start"
            time.sleep(0.2)
        yield url, packages
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_legacy_fallback_to_pypiserver(pypiserver, tmp_path: Path) -> None:  # noqa: ANN001
    url, packages = pypiserver
    env = client_env(tmp_path)
    files = release(tmp_path / "dist", "oldschool")
    result = publish(url + "/", "--json", *files, env=env)
    assert result.returncode == 0, describe(result)
    assert "does not speak Upload 2.0" in result.stdout
    rel = summary(result)["releases"][0]
    assert (rel["protocol"], rel["status"]) == ("legacy", "uploaded")
    stored = {p.name: sha256(p) for p in packages.iterdir()}
    assert stored.items() >= {f.name: sha256(f) for f in files}.items()
    page = http_get(f"{url}/simple/oldschool/").body.decode()
    assert all(f.name in page for f in files)

    again = publish(url + "/", files[0], env=env)
    assert again.returncode == 1 and "already exists" in again.stdout, describe(again)
    skip = publish(url + "/", "--skip-existing", "--json", files[0], env=env)
    assert skip.returncode == 0, describe(skip)
    assert summary(skip)["releases"][0]["files"][0]["status"] == "exists"


def test_forced_legacy_protocol_on_pallet(server: Server, tmp_path: Path) -> None:
    """The legacy form the client builds passes Pallet's strict form-vs-metadata checks."""
    dist = tmp_path / "dist"
    meta = (
        "Metadata-Version: 2.4\nName: Form.Fields\nVersion: 3.1\nSummary: all the fields\n"
        "Requires-Python: >=3.9\nRequires-Dist: packaging>=20\nClassifier: Typing :: Typed\n"
        "Project-URL: Source, https://example.invalid/src\nKeywords: a,b\n\nLong text.\n"
    )
    wheel = make_wheel(dist, "Form.Fields", "3.1", metadata=meta)
    result = publish(server, "--protocol", "legacy", "--json", wheel, env=client_env(tmp_path))
    assert result.returncode == 0, describe(result)
    assert summary(result)["releases"][0]["protocol"] == "legacy"
    assert listed(server, "form-fields") == {wheel.name: sha256(wheel)}
    info = json.loads(http_get(f"{server.url}/pypi/form-fields/3.1/json").body)["info"]
    assert info["requires_python"] == ">=3.9"
    assert info["summary"] == "all the fields"


# --- attestations ------------------------------------------------------------------------------


def _attestation(path: Path, digest: str) -> None:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": path.name, "digest": {"sha256": digest}}],
    }
    doc = {
        "version": 1,
        "verification_material": {"certificate": "", "transparency_entries": []},
        "envelope": {
            "statement": base64.b64encode(json.dumps(statement).encode()).decode(),
            "signature": "",
        },
    }
    path.with_name(path.name + ".publish.attestation").write_text(json.dumps(doc))


@pytest.mark.parametrize("protocol", ["2.0", "legacy"])
def test_attestations_next_to_a_dist_are_uploaded(
    server: Server, protocol: str, tmp_path: Path
) -> None:
    env = client_env(tmp_path)
    good = make_wheel(tmp_path / "good", f"attested-{protocol[0]}", "1.0")
    _attestation(good, sha256(good))
    ok = publish(server, "--protocol", protocol, "--json", good.parent / "*", env=env)
    assert ok.returncode == 0, describe(ok)
    assert [f["filename"] for f in summary(ok)["releases"][0]["files"]] == [good.name]
    # The server checks what it receives: a lying attestation proves it was sent.
    bad = make_wheel(tmp_path / "bad", f"attested-{protocol[0]}", "2.0")
    _attestation(bad, "0" * 64)
    refused = publish(server, "--protocol", protocol, bad, env=env)
    assert refused.returncode == 1
    assert "attestation" in refused.stdout.lower(), describe(refused)
    assert bad.name not in listed(server, f"attested-{protocol[0]}")


# --- credentials and errors ----------------------------------------------------------------------


def test_credentials_from_netrc_and_from_a_named_repository(server: Server, tmp_path: Path) -> None:
    env = client_env(tmp_path)
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login __token__ password {server.token}\n")
    netrc.chmod(0o600)
    first = make_wheel(tmp_path / "a", "creds", "1.0")
    by_netrc = publish(server, first, env={**env, "NETRC": str(netrc)}, token="")
    assert by_netrc.returncode == 0, describe(by_netrc)

    config = tmp_path / "xdg" / "pallet" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[repositories.team]\nurl = "{server.url}/"\ntoken-env = "TEAM_TOKEN"\n')
    second = make_wheel(tmp_path / "b", "creds", "2.0")
    cmd = [*pallet_command(), "publish", "-r", "team", second]
    by_repo = run(
        cmd, env={**env, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "TEAM_TOKEN": server.token}
    )
    assert by_repo.returncode == 0, describe(by_repo)
    assert_no_secrets(by_repo.stdout, server.token)
    assert set(listed(server, "creds")) == {first.name, second.name}

    missing = run([*pallet_command(), "publish", "-r", "nope", second], env=env)
    assert missing.returncode == 1 and "repository 'nope' is not configured" in missing.stdout


def test_errors_are_one_line_and_publish_nothing(server: Server, tmp_path: Path) -> None:
    env = client_env(tmp_path)
    wheel = make_wheel(tmp_path / "dist", "denied", "1.0")
    bogus = "pallet_" + "0" * 16 + "_not-a-real-token-secret"
    refused = publish(server, wheel, env=env, token=bogus)
    assert refused.returncode == 1
    (line,) = [x for x in refused.stdout.splitlines() if x.startswith("error:")]
    assert "401" in line and "Traceback" not in refused.stdout
    assert listed(server, "denied") == {}

    liar = make_wheel(
        tmp_path / "liar",
        "liar",
        "1.0",
        metadata="Metadata-Version: 2.1\nName: someone-else\nVersion: 1.0\n",
    )
    local = publish(server, liar, env=env)
    assert local.returncode == 1
    assert "its metadata names project 'someone-else'" in local.stdout, describe(local)
    nothing = publish(server, str(tmp_path / "nothing-here" / "*.whl"), env=env)
    assert nothing.returncode == 1 and "no file matches" in nothing.stdout


# --- progress ------------------------------------------------------------------------------------


def test_progress_bars_on_a_terminal_and_lines_elsewhere(server: Server, tmp_path: Path) -> None:
    import pty

    env = {**client_env(tmp_path), "COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    wheel = make_large_wheel(tmp_path / "tty", "barred", "1.0", 20 * MB)
    sdist = make_sdist(tmp_path / "tty", "barred", "1.0")
    cmd = [*pallet_command(), "publish", "--url", server.url, "-t", server.token]
    cmd += ["--limit-rate", "20M", str(wheel), str(sdist)]
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        proc.wait(timeout=120)
        os.close(master)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, screen
    assert "━" in screen  # rich's bar
    assert "total" in screen and wheel.name in screen
    assert re.search(r"\d+(\.\d+)? MB/s", screen), screen  # transfer speed column
    assert "\x1b[" in screen  # redrawn in place with terminal escapes
    assert "published barred 1.0" in screen

    plain_dir = tmp_path / "plain"
    plain = [make_wheel(plain_dir, "unbarred", "1.0"), make_sdist(plain_dir, "unbarred", "1.0")]
    result = publish(server, *plain, env=client_env(tmp_path))
    assert result.returncode == 0, describe(result)
    assert "━" not in result.stdout and "\x1b[" not in result.stdout
    for f in plain:
        assert len([x for x in result.stdout.splitlines() if x.startswith(f"{f.name}: sent")]) == 1


def test_ctrl_c_offers_a_clean_cancel(server: Server, tmp_path: Path) -> None:
    import pty

    env = {**client_env(tmp_path), "COLUMNS": "120", "TERM": "xterm-256color"}
    wheel = make_large_wheel(tmp_path / "slow", "interrupted", "1.0", 30 * MB)
    cmd = [*pallet_command(), "publish", "--url", server.url, "-t", server.token]
    cmd += ["--limit-rate", "5M", "--mechanism", "http-post-bytes", str(wheel)]
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    screen = ""

    def read_until(text: str, timeout: float = 60) -> None:
        nonlocal screen
        deadline = time.monotonic() + timeout
        while text not in screen:
            assert time.monotonic() < deadline, f"no {text!r} in {screen!r}"
            try:
                screen += os.read(master, 65536).decode("utf-8", "replace")
            except OSError:
                break

    try:
        read_until("publishing session for interrupted 1.0: ")
        session_url = re.search(r"interrupted 1\.0: (\S+)", screen).group(1)
        read_until("MB/s")  # bytes are moving
        proc.send_signal(signal.SIGINT)
        read_until("Cancel the publishing session")
        os.write(master, b"y\n")
        read_until("nothing was published")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert proc.returncode == 130, screen
    assert authed_get(server, session_url)["status"] == "canceled"
    assert listed(server, "interrupted") == {}


def test_short_lived_sessions_are_extended_during_a_slow_upload(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """The upload takes twice the lifetime the index grants: only extensions keep it alive."""
    server = server_factory(extra_args=("--session-lifetime", "6", "--file-session-lifetime", "6"))
    wheel = make_large_wheel(tmp_path, "slowpoke", "1.0", 12 * MB)
    result = publish(
        server,
        "--mechanism",
        "http-post-bytes",
        "--limit-rate",
        "1M",
        wheel,
        env=client_env(tmp_path),
    )
    assert result.returncode == 0, describe(result)
    log = server.log(None)
    assert re.search(r'"POST /upload/2\.0/sessions/[0-9a-f]+/extend" 200', log)
    assert re.search(r'"POST /upload/2\.0/sessions/[0-9a-f]+/files/[0-9a-f]+/extend" 200', log)
    assert listed(server, "slowpoke") == {wheel.name: sha256(wheel)}


def test_processing_states_are_polled_until_done(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Deferred completion and deferred publish (202 + processing) are waited out."""
    server = server_factory(
        extra_args=(
            "--deferred-publish",
            "--deferred-complete-size",
            "1",
            "--complete-wait",
            "0",  # every complete answers 202 at once, however fast verification is
        )
    )
    files = release(tmp_path / "dist", "deferred")
    result = publish(server, "--json", *files, env=client_env(tmp_path))
    assert result.returncode == 0, describe(result)
    assert summary(result)["releases"][0]["status"] == "published"
    log = server.log(None)
    assert len(re.findall(r'/complete" 202', log)) == 3
    assert re.search(r'/publish" 202', log)
    assert listed(server, "deferred") == {f.name: sha256(f) for f in files}


def test_session_flag_adds_files_to_an_open_session_then_publishes(
    server: Server, tmp_path: Path
) -> None:
    """Two CI jobs, one release: the second job adds its wheel to the first one's stage."""
    env = client_env(tmp_path)
    sdist, wheel, other_wheel = (
        make_sdist(tmp_path / "job1", "joined", "1.0"),
        make_wheel(tmp_path / "job2", "joined", "1.0"),
        make_wheel(tmp_path / "job2", "joined", "1.0", tag="py2-none-any"),
    )
    first = publish(server, "--stage", "--json", sdist, env=env)
    session_url = summary(first)["releases"][0]["session"]
    second = publish(server, "--session", session_url, "--json", wheel, other_wheel, env=env)
    assert second.returncode == 0, describe(second)
    assert summary(second)["releases"][0]["status"] == "published"
    assert listed(server, "joined") == {f.name: sha256(f) for f in (sdist, wheel, other_wheel)}


def test_each_release_is_tried_and_reported(server: Server, tmp_path: Path) -> None:
    """A token limited to one project: that release is published, the other is refused, and
    the summary says so for each."""
    env = client_env(tmp_path)
    token = server.create_token("--scope", "upload", "--project", "mine")
    mine, theirs = (
        make_wheel(tmp_path / "d", "mine", "1.0"),
        make_wheel(tmp_path / "d", "theirs", "1.0"),
    )
    result = publish(server, "--json", mine, theirs, env=env, token=token)
    assert result.returncode == 1, describe(result)
    releases = {r["name"]: r for r in summary(result)["releases"]}
    assert releases["mine"]["status"] == "published"
    assert releases["theirs"]["status"] == "failed" and "403" in releases["theirs"]["error"]
    assert listed(server, "mine") == {mine.name: sha256(mine)}
    assert listed(server, "theirs") == {}


@pytest.mark.parametrize("path", ["/", "/upload/2.0/", "/legacy/"])
def test_any_of_the_index_urls_leads_to_upload_2(server: Server, path: str, tmp_path: Path) -> None:
    """The base URL, the Upload 2.0 root or the legacy URL: discovery finds Upload 2.0."""
    name = "via-" + (path.strip("/").replace("/", "-").replace(".", "") or "base")
    wheel = make_wheel(tmp_path, name, "1.0")
    result = publish(
        server.url + path, "--json", wheel, env=client_env(tmp_path), token=server.token
    )
    assert result.returncode == 0, describe(result)
    rel = summary(result)["releases"][0]
    assert (rel["protocol"], rel["status"]) == ("2.0", "published")
    assert listed(server, name) == {wheel.name: sha256(wheel)}


def test_private_index(private_server: Server, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "secretive", "1.0")
    result = publish(private_server, "--json", wheel, env=client_env(tmp_path))
    assert result.returncode == 0, describe(result)
    assert summary(result)["releases"][0]["status"] == "published"
    page = http_get(
        f"{private_server.simple_url}secretive/",
        accept="application/vnd.pypi.simple.v1+json",
        token=private_server.token,
    )
    assert page.status == 200 and wheel.name in page.body.decode()
