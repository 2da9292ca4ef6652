"""The real-world corpus (``manifest.toml``) through every way into Pallet, and back out.

Each upload path runs against its own fresh ``pallet serve`` with real clients in a scrubbed
environment, talking only to 127.0.0.1:

- ``twine upload`` and ``uv publish`` (legacy API) with an ordinary upload token;
- ``pallet publish`` with an ordinary upload token, and with an ``import`` token;
- ``pallet import`` (twice: the second run finds everything present).

Every file's fate is recorded (accepted, refused by the server with its reason, refused by the
client before sending, or skipped by the client) and compared with the manifest's verdict:
``accept`` files must get in through every path; ``import`` files only through the import rules;
``refuse`` files never. The per-client tables are printed (``pytest -s`` / ``-rA``) and written
to ``corpus-acceptance/`` under the run's temp root.

Then everything is installed back from Pallet alone: pip and uv, hashes checked, native wheels
installed, foreign-platform wheels downloaded and installed for their platform, keyring resolved
with its dependencies, a few sdists built, every sdist's listing and bytes checked.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pytest
from packaging.tags import sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from tests.corpus.conftest import Corpus
from tests.corpus.fetch import VERDICTS, Dist
from tests.e2e.support import (
    Server,
    ServerFactory,
    client_env,
    describe,
    http_get,
    pallet_command,
    run,
    tool,
)

# The first test may fetch the corpus (about two minutes on an empty cache): more than the
# default per-test timeout allows for.
pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]

ACCEPTED = "accepted"
SERVER = "refused-by-server"
CLIENT = "refused-by-client"
SKIPPED = "skipped"
STATUSES = (ACCEPTED, SERVER, CLIENT, SKIPPED)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
UPLOAD_TIMEOUT = 900
#: Client processes run at once where runs are independent (this is a 2-core machine).
PARALLEL_CLIENTS = 3
#: uv installs the native wheels below this size (pip installs them all).
UV_MAX = 5_000_000


@dataclass
class Outcome:
    status: str
    reason: str | None = None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plain(text: str) -> str:
    return ANSI.sub("", text)


def expected_first(corpus: Corpus) -> tuple[list[Dist], list[Dist]]:
    """The files split by verdict: ``accept``, then the rest.

    Only a scheduling choice: twine and uv stop at the first refusal (and twine reads every
    remaining file again on each run), so the files expected in go in one run and the small
    rest file by file. Every outcome is still observed, never assumed.
    """
    accept = [d for d in corpus.dists if d.verdict == "accept"]
    rest = [d for d in corpus.dists if d.verdict != "accept"]
    return accept, rest


# --- clients ------------------------------------------------------------------------------------


def twine_program() -> list[str]:
    return [tool("twine")]


def twine_version(env: dict[str, str]) -> str:
    result = run([*twine_program(), "--version"], env=env)
    found = re.search(r"twine version (\S+)", result.stdout)
    return found.group(1) if found else "unknown"


def problem_detail(output: str) -> str | None:
    """The ``detail`` of the problem document a verbose twine echoes."""
    found = re.search(r'"detail"\s*:\s*"((?:[^"\\]|\\.)*)"', output)
    return json.loads(f'"{found.group(1)}"') if found else None


def twine_pass(server: Server, token: str, paths: list[Path], env: dict[str, str]) -> dict:
    """Upload with twine, one run per refusal (twine stops at the first)."""
    outcomes: dict[str, Outcome] = {}
    pending = list(paths)
    twine_env = {**env, "COLUMNS": "1000"}  # no rich wrapping inside the server's answer
    while pending:
        result = run(
            [
                *twine_program(),
                "upload",
                "--verbose",
                "--repository-url",
                server.upload_url,
                "-u",
                "__token__",
                "-p",
                token,
                "--non-interactive",
                "--disable-progress-bar",
                *pending,
            ],
            env=twine_env,
            timeout=UPLOAD_TIMEOUT,
        )
        out = plain(result.stdout)
        attempted = list(dict.fromkeys(re.findall(r"^Uploading (\S+)\s*$", out, re.M)))
        if result.returncode == 0:
            for path in pending:
                outcomes[path.name] = (
                    Outcome(ACCEPTED)
                    if path.name in attempted
                    else Outcome(SKIPPED, "twine exited 0 without uploading it")
                )
            break
        if attempted and "HTTPError" in out:
            *uploaded, failing = attempted
            for name in uploaded:
                outcomes[name] = Outcome(ACCEPTED)
            reason = problem_detail(out) or out.strip().splitlines()[-1]
            outcomes[failing] = Outcome(SERVER, reason)
        else:
            # twine reads every file before sending any: one of them was refused locally.
            culprit, reason = (
                (pending[0].name, local_refusal_reason(out, result))
                if len(pending) == 1
                else twine_local_refusal(pending, twine_env, result)
            )
            outcomes[culprit] = Outcome(CLIENT, reason)
        done = set(outcomes)
        if not [p for p in pending if p.name in done]:
            pytest.fail(f"twine made no progress\n{describe(result)}")
        pending = [p for p in pending if p.name not in done]
    return outcomes


def twine_local_refusal(
    pending: list[Path], env: dict[str, str], failed: subprocess.CompletedProcess[str]
) -> tuple[str, str]:
    """Which file made ``twine upload`` give up before sending anything, and why.

    ``twine check`` reads files with the same code and names each file before reading it; the
    culprit is then confirmed by a ``twine upload`` of that file alone.
    """
    check = run([*twine_program(), "check", *pending], env=env, timeout=UPLOAD_TIMEOUT)
    out = plain(check.stdout)
    checking = re.findall(r"^Checking (\S+): ", out, re.M)
    if not checking or "InvalidDistribution" not in out:
        pytest.fail(
            "twine refused before sending, but twine check names no culprit\n"
            f"{describe(failed)}\n{describe(check)}"
        )
    culprit = Path(checking[-1])
    alone = run(
        [
            *twine_program(),
            "upload",
            "--repository-url",
            "http://127.0.0.1:9/",
            "-u",
            "x",
            "-p",
            "x",
        ]
        + ["--non-interactive", "--disable-progress-bar", culprit],
        env=env,
    )
    return culprit.name, local_refusal_reason(plain(alone.stdout), alone)


def local_refusal_reason(out: str, result: subprocess.CompletedProcess[str]) -> str:
    """twine's reason for refusing a file without sending it (and proof that it sent nothing)."""
    sent = re.search(r"^Uploading \S+\s*$", out, re.M)
    found = re.search(r"InvalidDistribution: (.*)", out, re.S)
    if result.returncode == 0 or sent or not found:
        pytest.fail(f"expected twine to refuse the file locally\n{describe(result)}")
    return " ".join(found.group(1).split())


def uv_pass(server: Server, token: str, paths: list[Path], env: dict[str, str]) -> dict:
    """Upload with ``uv publish``, one run per refusal (uv stops at the first)."""
    outcomes: dict[str, Outcome] = {}
    pending = list(paths)
    while pending:
        result = run(
            [
                tool("uv"),
                "publish",
                "--publish-url",
                server.upload_url,
                "--token",
                token,
                "--trusted-publishing",
                "never",
                *pending,
            ],
            env={**env, "COLUMNS": "1000"},  # uv wraps its messages at the terminal width
            timeout=UPLOAD_TIMEOUT,
        )
        out = plain(result.stdout)
        for line in out.splitlines():
            odd = re.search(r"`([^`]+)` has a non-normalized filename", line)
            invalid = re.search(r"not a valid distribution filename: (\S+)", line)
            if odd or invalid:
                name = odd.group(1) if odd else Path(invalid.group(1)).name
                outcomes[name] = Outcome(SKIPPED, line.strip())
        attempted = list(dict.fromkeys(re.findall(r"^\s*Uploading (\S+) \(", out, re.M)))
        failed = re.search(r"error: Failed to publish:?\s+`?([^`\s]+)`?", out)
        if failed:
            failing = Path(failed.group(1)).name
            message = out[failed.start() :]
            cause = re.search(r"Server message: (.*)", message, re.S)
            reason = " ".join((cause.group(1) if cause else message).split())
            for name in attempted:
                if name != failing:
                    outcomes[name] = Outcome(ACCEPTED)
            outcomes[failing] = Outcome(SERVER if failing in attempted else CLIENT, reason)
        elif result.returncode == 0 or "No files found to publish" in out:
            for name in attempted:
                outcomes[name] = Outcome(ACCEPTED)
            for path in pending:
                outcomes.setdefault(path.name, Outcome(SKIPPED, "uv published nothing for it"))
        else:
            pytest.fail(f"uv publish failed without naming a file\n{describe(result)}")
        done = set(outcomes)
        if not [p for p in pending if p.name in done]:
            pytest.fail(f"uv publish made no progress\n{describe(result)}")
        pending = [p for p in pending if p.name not in done]
    return outcomes


def pallet_publish_pass(server: Server, token: str, paths: list[Path], env: dict[str, str]) -> dict:
    """``pallet publish --json``: every release is reported; a file the client refuses before
    sending stops the run, so it is set aside and the run repeated without it."""
    outcomes: dict[str, Outcome] = {}
    pending = list(paths)
    while pending:
        cmd = [*pallet_command(), "publish", "--url", server.url, "--token", token, "--json"]
        proc = subprocess.run(
            [*cmd, *map(str, pending)],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=UPLOAD_TIMEOUT,
            check=False,
        )
        context = f"$ pallet publish ... [exit {proc.returncode}]\n{proc.stdout}\n{proc.stderr}"
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            pytest.fail(f"pallet publish --json printed no JSON\n{context}")
        if doc.get("releases") is None:
            error = doc.get("error") or ""
            names = {p.name for p in pending}
            culprit = error.split(":", 1)[0].strip()
            if culprit not in names:
                pytest.fail(f"pallet publish refused a file it does not name\n{context}")
            outcomes[culprit] = Outcome(CLIENT, error)
        else:
            for release in doc["releases"]:
                for entry in release["files"]:
                    name, status = entry["filename"], entry["status"]
                    if status == "uploaded" and release["status"] == "published":
                        outcomes[name] = Outcome(ACCEPTED)
                    elif status == "failed" and re.match(r"4\d\d ", entry.get("error") or ""):
                        outcomes[name] = Outcome(SERVER, entry["error"])
                    # Anything else (canceled with a refused sibling) is tried again alone.
        done = set(outcomes)
        if not [p for p in pending if p.name in done]:
            pytest.fail(f"pallet publish made no progress\n{context}")
        pending = [p for p in pending if p.name not in done]
    return outcomes


def pallet_import(server: Server, paths: list[Path]) -> tuple[int, dict]:
    result = server.cli("import", *map(str, paths), "--json", timeout=UPLOAD_TIMEOUT)
    try:
        return result.returncode, json.loads(result.stdout)
    except ValueError:
        pytest.fail(
            f"pallet import --json printed no JSON [exit {result.returncode}]\n"
            f"{result.stdout}\n{result.stderr}"
        )


# --- listing, reporting, assertions -------------------------------------------------------------


def project_pages(server: Server, projects: Iterable[str]) -> dict[str, dict[str, dict]]:
    """{project: {filename: PEP 691 file entry}} for every project (empty if not there)."""
    pages = {}
    for project in sorted(set(projects)):
        resp = http_get(f"{server.simple_url}{project}/", accept=SIMPLE_JSON)
        pages[project] = (
            {f["filename"]: f for f in json.loads(resp.body)["files"]} if resp.status == 200 else {}
        )
    return pages


def check_listing(server: Server, corpus: Corpus, outcomes: dict[str, Outcome]) -> list[str]:
    """Accepted files are listed with their sha256; refused and skipped files are not."""
    pages = project_pages(server, (d.project for d in corpus.dists))
    problems = []
    for dist in corpus.dists:
        entry = pages[dist.project].get(dist.filename)
        outcome = outcomes.get(dist.filename)
        if outcome is None:
            problems.append(f"{dist.filename}: no outcome recorded")
        elif outcome.status == ACCEPTED:
            if entry is None:
                problems.append(f"{dist.filename}: accepted but not listed on /simple/")
            elif entry["hashes"].get("sha256") != sha256(corpus.path(dist)):
                problems.append(f"{dist.filename}: listed with another sha256")
        elif entry is not None:
            problems.append(f"{dist.filename}: {outcome.status} but listed on /simple/")
    return problems


def acceptance_table(corpus: Corpus, outcomes: dict[str, Outcome]) -> dict[str, dict[str, int]]:
    table = {v: dict.fromkeys(("files", *STATUSES), 0) for v in VERDICTS}
    for dist in corpus.dists:
        row = table[dist.verdict]
        row["files"] += 1
        outcome = outcomes.get(dist.filename)
        if outcome is not None:
            row[outcome.status] += 1
    return table


def format_table(client: str, table: dict[str, dict[str, int]], seconds: float) -> str:
    head = f"{'verdict':8} {'files':>5} " + " ".join(f"{s:>17}" for s in STATUSES)
    rows = [
        f"{v:8} {table[v]['files']:>5} " + " ".join(f"{table[v][s]:>17}" for s in STATUSES)
        for v in VERDICTS
    ]
    return "\n".join([f"corpus acceptance: {client} ({seconds:.1f}s)", head, *rows])


def report(
    report_dir: Path,
    key: str,
    client: str,
    corpus: Corpus,
    outcomes: dict[str, Outcome],
    seconds: float,
) -> None:
    """Print this client's table; write it, with every file's fate, next to the others'."""
    table = acceptance_table(corpus, outcomes)
    print("\n" + format_table(client, table, seconds))
    by_name = corpus.by_name()
    doc = {
        "client": client,
        "seconds": round(seconds, 1),
        "table": table,
        "files": {
            name: {"verdict": by_name[name].verdict, "status": o.status, "reason": o.reason}
            for name, o in sorted(outcomes.items())
            if name in by_name
        },
    }
    (report_dir / f"{key}.json").write_text(json.dumps(doc, indent=1))
    with (report_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        combined = report_dir / "acceptance.json"
        merged = json.loads(combined.read_text()) if combined.exists() else {}
        merged[key] = {k: doc[k] for k in ("client", "seconds", "table")}
        combined.write_text(json.dumps(merged, indent=1, sort_keys=True))
    print(f"(all tables so far: {report_dir / 'acceptance.json'})")


def mismatches(
    corpus: Corpus,
    outcomes: dict[str, Outcome],
    *,
    import_rules: bool,
    pallet_client: bool = False,
) -> list[str]:
    """What contradicts the manifest's verdicts for this path into the index.

    A refusal's reason is Pallet's when the server refused, or when Pallet's own client did
    (``pallet_client``); only then must it say why in Pallet's words (PEP 440 for a version).
    """
    problems = []
    for dist in corpus.dists:
        outcome = outcomes.get(dist.filename, Outcome("missing"))
        what = f"{dist.filename} [{dist.verdict}]: {outcome.status}"
        why = f" ({outcome.reason})" if outcome.reason else ""
        if dist.verdict == "accept":
            if outcome.status != ACCEPTED:
                problems.append(what + why)
        elif dist.verdict == "import":
            if import_rules and outcome.status != ACCEPTED:
                problems.append(what + why)
            elif not import_rules and outcome.status == ACCEPTED:
                problems.append(f"{what} under the default rules -- PyPI refuses it: {dist.note}")
        elif outcome.status == ACCEPTED:
            problems.append(f"{what} -- {dist.note}")
        elif outcome.status not in (SERVER, CLIENT):
            if import_rules:
                problems.append(what + why)
        elif outcome.status == SERVER or pallet_client:
            if not outcome.reason:
                problems.append(what + " without a reason")
            elif "not PEP 440" in dist.note and "PEP 440" not in outcome.reason:
                problems.append(what + f": the reason does not mention PEP 440{why}")
    return problems


def run_client(
    corpus: Corpus,
    uploader: Callable[[list[Path]], dict[str, Outcome]],
    *,
    one_by_one: bool = False,
) -> tuple[dict[str, Outcome], float]:
    """The ``accept`` files in one call, then the rest (in parallel runs of one file each
    with ``one_by_one``, for clients that stop at the first refusal)."""
    started = time.monotonic()
    accept, rest = expected_first(corpus)
    outcomes = uploader([corpus.path(d) for d in accept])
    if one_by_one:
        with concurrent.futures.ThreadPoolExecutor(PARALLEL_CLIENTS) as pool:
            for result in pool.map(uploader, [[corpus.path(d)] for d in rest]):
                outcomes.update(result)
    else:
        outcomes.update(uploader([corpus.path(d) for d in rest]))
    return outcomes, time.monotonic() - started


def assert_as_expected(
    server: Server,
    corpus: Corpus,
    outcomes: dict[str, Outcome],
    *,
    import_rules: bool,
    pallet_client: bool = False,
) -> None:
    problems = mismatches(corpus, outcomes, import_rules=import_rules, pallet_client=pallet_client)
    problems += check_listing(server, corpus, outcomes)
    assert not problems, f"{len(problems)} files disagree with the manifest:\n" + "\n".join(
        problems
    )


# --- the upload paths ---------------------------------------------------------------------------


def test_twine_upload(
    corpus: Corpus, servers: ServerFactory, report_dir: Path, tmp_path: Path
) -> None:
    server = servers()
    env = client_env(tmp_path)
    try:
        outcomes, seconds = run_client(
            corpus, lambda paths: twine_pass(server, server.token, paths, env), one_by_one=True
        )
        client = f"twine {twine_version(env)} upload, upload token"
        report(report_dir, "twine", client, corpus, outcomes, seconds)
        assert Version(twine_version(env)) >= Version("7"), "the suite expects the current twine"
        assert_as_expected(server, corpus, outcomes, import_rules=False)
    finally:
        server.stop()


def test_uv_publish(
    corpus: Corpus, servers: ServerFactory, report_dir: Path, tmp_path: Path
) -> None:
    """uv skips non-normalised filenames with a warning and exits 0: those count as skipped,
    which is fine for ``import`` files and a failure for ``accept`` ones."""
    server = servers()
    env = client_env(tmp_path)
    try:
        outcomes, seconds = run_client(
            corpus, lambda paths: uv_pass(server, server.token, paths, env), one_by_one=True
        )
        version = run([tool("uv"), "--version"], env=env).stdout.split()[1]
        report(report_dir, "uv", f"uv {version} publish, upload token", corpus, outcomes, seconds)
        assert_as_expected(server, corpus, outcomes, import_rules=False)
    finally:
        server.stop()


@pytest.mark.parametrize("scope", ["upload", "import"])
def test_pallet_publish(
    corpus: Corpus, servers: ServerFactory, report_dir: Path, tmp_path: Path, scope: str
) -> None:
    server = servers()
    env = client_env(tmp_path)
    try:
        token = server.token if scope == "upload" else server.create_token("--scope", "import")
        outcomes, seconds = run_client(
            corpus, lambda paths: pallet_publish_pass(server, token, paths, env)
        )
        report(
            report_dir,
            f"pallet-publish-{scope}",
            f"pallet publish, {scope} token",
            corpus,
            outcomes,
            seconds,
        )
        assert_as_expected(
            server, corpus, outcomes, import_rules=scope == "import", pallet_client=True
        )
    finally:
        server.stop()


def import_outcomes(corpus: Corpus, doc: dict) -> dict[str, Outcome]:
    statuses = {"imported": ACCEPTED, "present": ACCEPTED, "refused": SERVER}
    outcomes = {}
    for entry in doc["files"]:
        name = entry.get("filename") or Path(entry["path"]).name
        outcomes[name] = Outcome(statuses.get(entry["status"], entry["status"]), entry["reason"])
    return outcomes


@dataclass
class Imported:
    """A server whose index was filled by one ``pallet import`` of the whole corpus."""

    server: Server
    code: int
    doc: dict
    seconds: float


@pytest.fixture(scope="module")
def imported(corpus: Corpus, servers: ServerFactory) -> Imported:
    """``pallet import`` of every corpus file into a fresh server; the import test checks it,
    and the install tests install from it (one import per test process, not one per test)."""
    server = servers()
    started = time.monotonic()
    code, doc = pallet_import(server, [corpus.path(d) for d in corpus.dists])
    return Imported(server, code, doc, time.monotonic() - started)


def test_pallet_import_twice(corpus: Corpus, imported: Imported, report_dir: Path) -> None:
    server, code, first = imported.server, imported.code, imported.doc
    paths = [corpus.path(d) for d in corpus.dists]
    outcomes = import_outcomes(corpus, first)
    report(report_dir, "pallet-import", "pallet import", corpus, outcomes, imported.seconds)
    refused = [d for d in corpus.dists if outcomes.get(d.filename, Outcome("")).status != ACCEPTED]
    assert code == (1 if refused else 0), first
    assert first["imported"] + first["present"] + first["refused"] == len(paths), first
    assert_as_expected(server, corpus, outcomes, import_rules=True)

    # Idempotent: the same files again are all present, and nothing changes.
    code, second = pallet_import(server, paths)
    again = {e["filename"]: e for e in second["files"]}
    for name, outcome in outcomes.items():
        expected = "present" if outcome.status == ACCEPTED else "refused"
        assert again[name]["status"] == expected, (name, again[name])
    assert (second["imported"], second["present"]) == (0, first["imported"]), second
    assert code == (1 if refused else 0), second
    assert check_listing(server, corpus, outcomes) == []


# --- installing back from Pallet alone ----------------------------------------------------------


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: dict[str, str] = {}
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""

    def handle_data(self, data: str) -> None:
        if self._href is not None and data.strip():
            self.hrefs[data.strip()] = self._href

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._href = None


def requirement_runs(dists: list[Dist], key=lambda d: ()) -> list[list[Dist]]:  # noqa: ANN001
    """Groups for installer runs: same ``key``, and no project twice in one run."""
    runs: dict[object, list[list[Dist]]] = {}
    for dist in dists:
        groups = runs.setdefault(key(dist), [])
        for group in groups:
            if all(d.project != dist.project for d in group):
                group.append(dist)
                break
        else:
            groups.append([dist])
    return [group for groups in runs.values() for group in groups]


def hashed_requirements(path: Path, corpus: Corpus, dists: list[Dist]) -> Path:
    path.write_text(
        "".join(f"{d.project}=={d.version} --hash=sha256:{sha256(corpus.path(d))}\n" for d in dists)
    )
    return path


def installed(target: Path) -> set[tuple[str, str]]:
    return {
        (canonicalize_name(dist.metadata["Name"]), str(Version(dist.version)))
        for dist in importlib.metadata.distributions(path=[str(target)])
    }


def expected_installed(dists: list[Dist]) -> set[tuple[str, str]]:
    return {(d.project, str(Version(d.version))) for d in dists}


def native(dist: Dist) -> bool:
    supported = set(sys_tags())
    return dist.is_wheel and bool(parse_wheel_filename(dist.filename)[3] & supported)


#: uv's --python-platform for a wheel's platform tag.
def uv_platform(dist: Dist) -> str:
    platforms = {t.platform for t in parse_wheel_filename(dist.filename)[3]}
    first = sorted(platforms)[0]
    if first.startswith("manylinux"):
        arch = "aarch64" if "aarch64" in first else "x86_64"
        return f"{arch}-manylinux_2_28"
    if first.startswith("musllinux"):
        return f"{'aarch64' if 'aarch64' in first else 'x86_64'}-unknown-linux-musl"
    if first.startswith("win"):
        return {"win32": "i686", "win_amd64": "x86_64", "win_arm64": "aarch64"}[first] + (
            "-pc-windows-msvc"
        )
    if first.startswith("macosx"):
        return "aarch64-apple-darwin" if "arm64" in first else "x86_64-apple-darwin"
    raise AssertionError(f"no uv platform for {dist.filename}")


def python_version(dist: Dist) -> str:
    """The ``--python-version`` the manifest fetched the wheel with."""
    args = list(dist.pip)
    return args[args.index("--python-version") + 1] if "--python-version" in args else "3.11"


def pip(env: dict[str, str], *args: str | Path, timeout: float = 600):  # noqa: ANN201
    return run(
        [sys.executable, "-m", "pip", *args, "--no-input", "--disable-pip-version-check"],
        env=env,
        timeout=timeout,
    )


def pip_report_hashes(report: Path) -> dict[str, str]:
    """{filename: sha256} of what a ``pip install --report`` took from the index."""
    doc = json.loads(report.read_text())
    found = {}
    for item in doc["install"]:
        info = item["download_info"]
        name = urldefrag(info["url"])[0].rsplit("/", 1)[-1]
        found[name] = info["archive_info"]["hashes"]["sha256"]
    return found


@pytest.fixture(scope="module")
def full_index(corpus: Corpus, imported: Imported) -> Server:
    """The imported server, once it is known to hold every accept and import file."""
    outcomes = import_outcomes(corpus, imported.doc)
    missing = [
        d.filename
        for d in corpus.dists
        if d.verdict != "refuse" and outcomes.get(d.filename, Outcome("")).status != ACCEPTED
    ]
    assert not missing, f"pallet import did not take {missing}\n{json.dumps(imported.doc)[:3000]}"
    return imported.server


def test_native_wheels_install_with_pip_and_uv(
    corpus: Corpus, full_index: Server, tmp_path: Path
) -> None:
    """Every wheel this interpreter can use: pip installs each, hash-pinned, with only Pallet as
    the index; uv installs all but the largest the same way."""
    env = client_env(tmp_path)
    wheels = [d for d in corpus.dists if d.verdict != "refuse" and native(d)]
    runs = requirement_runs(wheels)
    for i, group in enumerate(runs):
        requirements = hashed_requirements(tmp_path / f"native-{i}.txt", corpus, group)
        target = tmp_path / f"pip-{i}"
        result = pip(
            env,
            "install",
            "--no-compile",  # bytecode for scipy and pyarrow is most of the time otherwise
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
            "--index-url",
            full_index.simple_url,
            "--target",
            target,
            "-r",
            requirements,
        )
        assert result.returncode == 0, describe(result)
        assert installed(target) >= expected_installed(group)

    # uv: the same, less the largest wheels (unpacking 500 MB twice proves nothing more).
    small = [d for d in wheels if d.verdict == "import" or corpus.path(d).stat().st_size < UV_MAX]
    for i, group in enumerate(requirement_runs(small)):
        requirements = hashed_requirements(tmp_path / f"uv-{i}.txt", corpus, group)
        target = tmp_path / f"uv-{i}"
        result = run(
            [
                tool("uv"),
                "pip",
                "install",
                "--python",
                sys.executable,
                "--no-deps",
                "--require-hashes",
                "--index-url",
                full_index.simple_url,
                "--target",
                target,
                "-r",
                requirements,
            ],
            env=env,
            timeout=600,
        )
        assert result.returncode == 0, describe(result)
        assert installed(target) >= expected_installed(group)


def test_foreign_wheels_download_and_install_for_their_platform(
    corpus: Corpus, full_index: Server, tmp_path: Path
) -> None:
    """Wheels for other platforms and Pythons: ``pip download --platform`` gets each exact file,
    and ``uv pip install --python-platform`` installs it into a target."""
    env = client_env(tmp_path)
    foreign = [d for d in corpus.dists if d.is_wheel and d.verdict != "refuse" and not native(d)]
    assert {uv_platform(d).split("-", 1)[1] for d in foreign} >= {
        "manylinux_2_28",
        "unknown-linux-musl",
        "pc-windows-msvc",
        "apple-darwin",
    }

    def pip_download(i: int, group: list[Dist]) -> list[str]:
        requirements = hashed_requirements(tmp_path / f"pip-{i}.txt", corpus, group)
        dest = tmp_path / f"pip-{i}"
        result = pip(
            env,
            "download",
            "--no-deps",
            *group[0].options,
            "--require-hashes",
            "--index-url",
            full_index.simple_url,
            "--dest",
            dest,
            "-r",
            requirements,
        )
        if result.returncode != 0:
            return [describe(result)]
        return [
            f"pip download did not bring {dist.filename}: {sorted(os.listdir(dest))}"
            for dist in group
            if not (dest / dist.filename).exists()
            or sha256(dest / dist.filename) != sha256(corpus.path(dist))
        ]

    runs = requirement_runs(foreign, key=lambda d: d.options)
    with concurrent.futures.ThreadPoolExecutor(PARALLEL_CLIENTS) as pool:
        problems = [p for found in pool.map(pip_download, range(len(runs)), runs) for p in found]

    key = lambda d: (uv_platform(d), python_version(d))  # noqa: E731
    for i, group in enumerate(requirement_runs(foreign, key=key)):
        platform, version = key(group[0])
        requirements = hashed_requirements(tmp_path / f"uv-{i}.txt", corpus, group)
        target = tmp_path / f"uv-{i}"
        macos = [
            int(t.platform.split("_")[1])
            for d in group
            for t in parse_wheel_filename(d.filename)[3]
            if t.platform.startswith("macosx")
        ]
        uv_env = {**env, "MACOSX_DEPLOYMENT_TARGET": f"{max(macos)}.0"} if macos else env
        result = run(
            [
                tool("uv"),
                "pip",
                "install",
                "--python",
                sys.executable,
                "--python-platform",
                platform,
                "--python-version",
                version,
                "--no-deps",
                "--require-hashes",
                "--index-url",
                full_index.simple_url,
                "--target",
                target,
                "-r",
                requirements,
            ],
            env=uv_env,
            timeout=600,
        )
        if result.returncode != 0:
            problems.append(describe(result))
        elif not installed(target) >= expected_installed(group):
            problems.append(f"uv ({platform}, {version}) installed {sorted(installed(target))}")
    assert not problems, "\n\n".join(problems)


#: keyring and what it pulls in on Linux with CPython 3.11.
KEYRING_CLOSURE = {
    "keyring",
    "jaraco-classes",
    "jaraco-functools",
    "jaraco-context",
    "backports-tarfile",
    "more-itertools",
    "importlib-metadata",
    "zipp",
    "secretstorage",
    "jeepney",
    "cryptography",
    "cffi",
    "pycparser",
}


def test_keyring_and_jaraco_classes_resolve_from_pallet_alone(
    corpus: Corpus, full_index: Server, tmp_path: Path
) -> None:
    """Dependencies resolved by pip and by uv with Pallet as the only index, among them the
    non-normalised ``jaraco.classes-3.4.0`` and ``backports.tarfile-1.2.0`` wheels; every file
    taken is one of the corpus's, byte for byte."""
    env = client_env(tmp_path)
    known = {name: sha256(path) for name, path in corpus.paths.items()}
    for requirement in ("keyring", "jaraco.classes==3.4.0"):
        slug = re.sub(r"\W+", "-", requirement)
        target, report_path = tmp_path / f"pip-{slug}", tmp_path / f"pip-{slug}.json"
        result = pip(
            env,
            "install",
            "--only-binary=:all:",
            "--index-url",
            full_index.simple_url,
            "--target",
            target,
            "--report",
            report_path,
            requirement,
        )
        assert result.returncode == 0, describe(result)
        taken = pip_report_hashes(report_path)
        assert taken and all(known.get(name) == digest for name, digest in taken.items()), taken
        names = {name for name, _ in installed(target)}
        if requirement == "keyring":
            assert names >= KEYRING_CLOSURE, sorted(names)
            assert "jaraco.classes-3.4.0-py3-none-any.whl" in taken, sorted(taken)
            assert "backports.tarfile-1.2.0-py3-none-any.whl" in taken, sorted(taken)
        else:
            assert ("jaraco-classes", "3.4.0") in installed(target)

        # uv: resolve with hashes from the index, check them against the corpus, install with them.
        locked = tmp_path / f"uv-{slug}.txt"
        compiled = subprocess.run(  # the requirement on stdin
            [
                tool("uv"),
                "pip",
                "compile",
                "--python",
                sys.executable,
                "--only-binary",
                ":all:",
                "--generate-hashes",
                "--no-header",
                "--index-url",
                full_index.simple_url,
                "--output-file",
                str(locked),
                "-",
            ],
            input=requirement + "\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert compiled.returncode == 0, compiled.stdout + compiled.stderr
        hashes = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", locked.read_text()))
        assert hashes and hashes <= set(known.values()), locked.read_text()
        target = tmp_path / f"uv-{slug}"
        result = run(
            [
                tool("uv"),
                "pip",
                "install",
                "--python",
                sys.executable,
                "--require-hashes",
                "--index-url",
                full_index.simple_url,
                "--target",
                target,
                "-r",
                locked,
            ],
            env=env,
            timeout=300,
        )
        assert result.returncode == 0, describe(result)
        uv_names = {name for name, _ in installed(target)}
        assert uv_names >= (KEYRING_CLOSURE if requirement == "keyring" else {"jaraco-classes"})


#: Pure-Python sdists built from Pallet alone, each with another build backend.
BUILDABLE = ("six-1.17.0.tar.gz", "colorama-0.4.6.tar.gz", "idna-3.20.tar.gz")


def test_sdists_are_listed_served_and_build(
    corpus: Corpus, full_index: Server, tmp_path: Path
) -> None:
    """Every sdist: on its PEP 691 page with its sha256, and its bytes served unchanged (most
    cannot be built on Python 3); Flask-0.1.tar.gz also on the HTML page; three current ones
    built and installed by pip with setuptools, hatchling and flit_core from Pallet."""
    sdists = [d for d in corpus.dists if not d.is_wheel and d.verdict != "refuse"]
    pages = project_pages(full_index, (d.project for d in sdists))
    problems = []
    for dist in sdists:
        digest = sha256(corpus.path(dist))
        entry = pages[dist.project].get(dist.filename)
        if entry is None or entry["hashes"].get("sha256") != digest:
            problems.append(f"{dist.filename}: not listed with its sha256 ({entry})")
            continue
        url = urljoin(f"{full_index.simple_url}{dist.project}/", entry["url"])
        body = http_get(url, timeout=60)
        if body.status != 200 or hashlib.sha256(body.body).hexdigest() != digest:
            problems.append(f"{dist.filename}: GET {url} -> {body.status}, other bytes")
    assert not problems, "\n".join(problems)

    flask = corpus.path(corpus.by_name()["Flask-0.1.tar.gz"])
    page = http_get(f"{full_index.simple_url}flask/", accept="text/html")
    assert page.status == 200, page.body[:300]
    anchors = _Anchors()
    anchors.feed(page.body.decode())
    href = anchors.hrefs.get("Flask-0.1.tar.gz")
    assert href is not None, sorted(anchors.hrefs)
    assert urldefrag(href).fragment == f"sha256={sha256(flask)}", href

    env = client_env(tmp_path)
    chosen = [corpus.by_name()[name] for name in BUILDABLE]
    requirements = hashed_requirements(tmp_path / "sdists.txt", corpus, chosen)
    target = tmp_path / "built"
    result = pip(
        env,
        "install",
        "--no-deps",
        "--require-hashes",
        "--no-binary",
        ",".join(d.project for d in chosen),
        "--index-url",
        full_index.simple_url,
        "--target",
        target,
        "-r",
        requirements,
    )
    assert result.returncode == 0, describe(result)
    assert installed(target) >= expected_installed(chosen)


def test_corpus_covers_the_shapes(corpus: Corpus) -> None:
    """The manifest keeps what the suite is for (a cheap guard against a shrinking corpus)."""
    shapes = Counter(d.shape for d in corpus.dists)
    for shape in (
        "wheel manylinux x86_64",
        "wheel manylinux aarch64",
        "wheel musllinux x86_64",
        "wheel windows",
        "wheel macos",
        "sdist .zip",
        "sdist .tar.gz",
    ):
        assert shapes[shape] > 0, shape
    assert len(corpus.dists) >= 130
    assert sum(corpus.path(d).stat().st_size > 30e6 for d in corpus.dists if d.is_wheel) >= 2
    assert any("!" in d.version for d in corpus.dists)
    assert {d.verdict for d in corpus.dists} == set(VERDICTS)
