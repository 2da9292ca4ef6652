"""Real clients (twine, uv, pip) against a real ``pallet serve``.

These are the compatibility promises users actually rely on: that the tools they already have
can publish to and install from Pallet with nothing but a URL and a token.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pytest
from packaging.version import Version

from tests.dists import core_metadata, dist_name, make_sdist, make_wheel
from tests.e2e.support import (
    Dists,
    Server,
    describe,
    http_get,
    make_venv,
    run,
    tool,
    twine_6_1,
)

pytestmark = pytest.mark.e2e

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
SIMPLE_HTML = "text/html"
# What `uv publish --check-url` prints for a file the index already holds with the same hash.
UV_SKIP_TEXT = "File {filename} already exists, skipping"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def twine_upload(
    server: Server,
    files: list[Path],
    env: dict[str, str],
    *,
    token: str | None = None,
    extra: tuple[str, ...] = (),
    url: str | None = None,
    old: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``twine upload``: the current twine of the ``test`` extra, or twine 6.1 with ``old``."""
    program, env = twine_6_1(env) if old else ([tool("twine")], env)
    cmd = [
        *program,
        "upload",
        "--repository-url",
        url or server.upload_url,
        "-u",
        "__token__",
        "-p",
        token or server.token,
        "--non-interactive",
        "--disable-progress-bar",
        *extra,
        *files,
    ]
    # A wide console keeps rich from wrapping the server's response body across lines.
    return run(cmd, env={**env, "COLUMNS": "1000"})


def uv_publish(
    server: Server,
    files: list[Path],
    env: dict[str, str],
    *,
    token: str | None = None,
    check_url: bool = True,
) -> subprocess.CompletedProcess[str]:
    cmd = [
        tool("uv"),
        "publish",
        "--publish-url",
        server.upload_url,
        "--token",
        token or server.token,
        "--trusted-publishing",
        "never",
    ]
    if check_url:
        cmd += ["--check-url", server.simple_url]
    return run([*cmd, *files], env=env)


def publish(server: Server, env: dict[str, str], *files: Path) -> None:
    """Make sure files are on the index, whichever test put them there first.

    Relies on identical re-uploads answering 200, which the upload tests assert separately.
    """
    result = twine_upload(server, list(files), env)
    assert result.returncode == 0, describe(result)


def simple_json(server: Server, project: str, token: str | None = None) -> dict:
    resp = http_get(f"{server.simple_url}{project}/", accept=SIMPLE_JSON, token=token)
    assert resp.status == 200, (resp.status, resp.body[:500])
    assert (resp.header("content-type") or "").startswith(SIMPLE_JSON)
    return json.loads(resp.body)


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[str, dict[str, str | None]]] = []
        self._attrs: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._attrs, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._attrs is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._attrs is not None:
            self.anchors.append(("".join(self._text).strip(), self._attrs))
            self._attrs = None


def simple_html(server: Server, project: str) -> dict[str, dict[str, str | None]]:
    """Filename -> anchor attributes of the PEP 503 project page."""
    resp = http_get(f"{server.simple_url}{project}/", accept=SIMPLE_HTML)
    assert resp.status == 200, (resp.status, resp.body[:500])
    assert (resp.header("content-type") or "").startswith("text/html")
    parser = _Anchors()
    parser.feed(resp.body.decode())
    return {text: attrs for text, attrs in parser.anchors}


def assert_download(server: Server, project: str, href: str, expected_sha256: str) -> None:
    url, _ = urldefrag(urljoin(f"{server.simple_url}{project}/", href))
    resp = http_get(url)
    assert resp.status == 200, (url, resp.status, resp.body[:300])
    assert hashlib.sha256(resp.body).hexdigest() == expected_sha256, url


def assert_listed(server: Server, project: str, files: list[Path]) -> None:
    """Each local file is on both simple pages with its sha256, and downloads to the same bytes."""
    page = simple_json(server, project)
    assert page["name"] == project
    by_name = {f["filename"]: f for f in page["files"]}
    anchors = simple_html(server, project)
    for path in files:
        digest = sha256(path)
        entry = by_name.get(path.name)
        assert entry is not None, (path.name, sorted(by_name))
        assert entry["hashes"]["sha256"] == digest
        assert_download(server, project, entry["url"], digest)
        metadata = entry.get("core-metadata")
        if isinstance(metadata, dict):  # PEP 658: pip and uv fetch this instead of the wheel
            assert_download(server, project, f"{entry['url']}.metadata", metadata["sha256"])
        attrs = anchors.get(path.name)
        assert attrs is not None, (path.name, sorted(anchors))
        href = attrs["href"] or ""
        assert urldefrag(href).fragment == f"sha256={digest}", href
        assert_download(server, project, href, digest)


def installed_version(python: Path, module: str, env: dict[str, str]) -> str:
    result = run([python, "-c", f"import {module}; print({module}.__version__)"], env=env)
    assert result.returncode == 0, describe(result)
    return result.stdout.strip().splitlines()[-1]


def pip_install(
    python: Path, index_url: str, env: dict[str, str], *requirements: str
) -> subprocess.CompletedProcess[str]:
    return run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--index-url",
            index_url,
            "--no-cache-dir",
            "--no-input",
            *requirements,
        ],
        env=env,
    )


def test_twine_uploads_wheel_and_sdist(server: Server, dists: Dists, env: dict[str, str]) -> None:
    files = [dists.wheel("alpha", "1.0"), dists.sdist("alpha", "1.0")]
    result = twine_upload(server, files, env)
    assert result.returncode == 0, describe(result)
    assert_listed(server, "alpha", files)


def test_twine_reupload_identical_files(server: Server, dists: Dists, env: dict[str, str]) -> None:
    files = [dists.wheel("alpha", "1.0"), dists.sdist("alpha", "1.0")]
    publish(server, env, *files)
    again = twine_upload(server, files, env)
    assert again.returncode == 0, describe(again)
    assert_listed(server, "alpha", files)


def twine_version(program: list[str], env: dict[str, str]) -> Version:
    result = run([*program, "--version"], env=env)
    assert result.returncode == 0, describe(result)
    found = re.search(r"twine version (\S+)", result.stdout)
    assert found, describe(result)
    return Version(found.group(1))


def test_twine_skip_existing(server: Server, dists: Dists, env: dict[str, str]) -> None:
    """twine 6.1, the last twine that allows --skip-existing for an index other than PyPI."""
    assert twine_version(*twine_6_1(env)) < Version("6.2")
    files = [dists.wheel("alpha", "1.0"), dists.sdist("alpha", "1.0")]
    publish(server, env, *files)
    skip = twine_upload(server, files, env, extra=("--skip-existing",), old=True)
    assert skip.returncode == 0, describe(skip)
    # Same filename, other bytes: Pallet's 400 "File already exists" is what twine skips on.
    other = dists.wheel("alpha", "1.0", variant="different")
    assert other.name == files[0].name and sha256(other) != sha256(files[0])
    skip = twine_upload(server, [other], env, extra=("--skip-existing",), old=True)
    assert skip.returncode == 0, describe(skip)
    assert f"Skipping {other.name} because it appears to already exist" in skip.stdout, describe(
        skip
    )
    assert_listed(server, "alpha", files)


def test_current_twine_refuses_skip_existing_for_other_indexes(
    server: Server, dists: Dists, env: dict[str, str]
) -> None:
    """What the README says about twine >= 6.2: --skip-existing is refused before any request."""
    wheel = dists.wheel("never-sent", "1.0")
    result = twine_upload(server, [wheel], env, extra=("--skip-existing",))
    assert result.returncode != 0, describe(result)
    assert "UnsupportedConfiguration" in result.stdout, describe(result)
    assert "--skip-existing" in result.stdout, describe(result)
    assert http_get(f"{server.simple_url}never-sent/").status == 404


def hatchling_like(directory: Path, name: str, version: str) -> list[Path]:
    """A wheel and an sdist as current hatchling writes them: Metadata-Version 2.5, a PEP 639
    license expression and the license file it names."""
    metadata = core_metadata(
        name,
        version,
        metadata_version="2.5",
        extra_headers="License-Expression: MIT\nLicense-File: LICENSE\n",
    )
    license_text = b"MIT License\n"
    licenses = f"{dist_name(name)}-{version}.dist-info/licenses/LICENSE"
    return [
        make_wheel(directory, name, version, metadata=metadata, files={licenses: license_text}),
        make_sdist(directory, name, version, metadata=metadata, files={"LICENSE": license_text}),
    ]


def test_current_twine_uploads_metadata_2_5(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    """The README's ``twine upload --repository-url ... dist/*`` with the current twine (the
    ``test`` extra's, 7 or later) and dists as current build backends write them."""
    assert twine_version([tool("twine")], env) >= Version("7")
    files = hatchling_like(tmp_path / "dist", "hatched", "1.0")
    result = twine_upload(server, files, env)
    assert result.returncode == 0, describe(result)
    assert_listed(server, "hatched", files)
    # PEP 658: the wheel's METADATA is served as it was written, Metadata-Version 2.5 included.
    entry = {f["filename"]: f for f in simple_json(server, "hatched")["files"]}[files[0].name]
    served = http_get(urljoin(f"{server.simple_url}hatched/", entry["url"]) + ".metadata")
    assert served.status == 200, served.body[:300]
    assert served.body.decode().startswith("Metadata-Version: 2.5\n"), served.body[:300]


def test_twine_6_1_cannot_read_metadata_2_5(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    """Why the README points at the current twine: 6.1 refuses Metadata 2.5 locally."""
    files = hatchling_like(tmp_path / "dist", "hatched-old", "1.0")
    result = twine_upload(server, files, env, old=True)
    assert result.returncode != 0, describe(result)
    assert "InvalidDistribution" in result.stdout, describe(result)
    assert "'2.5' is not a valid metadata version" in result.stdout, describe(result)
    assert http_get(f"{server.simple_url}hatched-old/").status == 404


@pytest.mark.parametrize("path", ["/legacy", "/"])
def test_twine_uploads_to_alias_urls(
    server: Server, dists: Dists, env: dict[str, str], path: str
) -> None:
    """Older configs point twine at ``/`` or ``/legacy`` without the trailing slash."""
    wheel = dists.wheel("zeta", "1.0" if path == "/" else "2.0")
    result = twine_upload(server, [wheel], env, url=server.url + path)
    assert result.returncode == 0, describe(result)
    assert_listed(server, "zeta", [wheel])


def test_uv_publish_retries_and_conflicts(
    server: Server, dists: Dists, env: dict[str, str]
) -> None:
    files = [
        dists.wheel("beta", "1.0", requires=("alpha>=1.0",)),
        dists.sdist("beta", "1.0", requires=("alpha>=1.0",)),
    ]
    first = uv_publish(server, files, env)
    assert first.returncode == 0, describe(first)
    assert_listed(server, "beta", files)

    again = uv_publish(server, files, env)
    assert again.returncode == 0, describe(again)
    for path in files:
        assert UV_SKIP_TEXT.format(filename=path.name) in again.stdout, describe(again)
    assert "Uploading" not in again.stdout, describe(again)

    # Same filename, different bytes: a conflict the server must refuse, and uv must report.
    other = dists.wheel("beta", "1.0", requires=("alpha>=1.0",), variant="different")
    assert other.name == files[0].name and sha256(other) != sha256(files[0])
    conflict = uv_publish(server, [other], env, check_url=False)
    assert conflict.returncode != 0, describe(conflict)
    assert "File already exists" in conflict.stdout, describe(conflict)
    assert_listed(server, "beta", files)


def test_uv_publish_skips_non_normalised_filenames(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    """What the README warns about: uv publish skips a wheel whose filename is not normalised
    (``jaraco.classes-...``), with only a warning, sends nothing and still exits 0."""
    odd = make_wheel(tmp_path, "odd.name", "1.0", filename="odd.name-1.0-py3-none-any.whl")
    result = uv_publish(server, [odd], env, check_url=False)
    assert result.returncode == 0, describe(result)
    assert "non-normalized filename" in result.stdout, describe(result)
    assert "Uploading" not in result.stdout, describe(result)
    assert http_get(f"{server.simple_url}odd-name/").status == 404


def _publish_alpha_and_beta(server: Server, dists: Dists, env: dict[str, str]) -> None:
    requires = ("alpha>=1.0",)
    publish(
        server,
        env,
        dists.wheel("alpha", "1.0"),
        dists.sdist("alpha", "1.0"),
        dists.wheel("beta", "1.0", requires=requires),
        dists.sdist("beta", "1.0", requires=requires),
    )


def test_pip_installs_with_dependency(
    server: Server, dists: Dists, env: dict[str, str], tmp_path: Path
) -> None:
    _publish_alpha_and_beta(server, dists, env)
    # Older releases make beta's page big enough to be compressed.
    publish(
        server, env, *(dists.wheel("beta", v, requires=("alpha>=1.0",)) for v in ("0.8", "0.9"))
    )
    # pip asks for gzip: the JSON page it reads comes compressed, and decodes to the plain one.
    pip_headers = {"Accept": f"{SIMPLE_JSON}, text/html;q=0.01", "Accept-Encoding": "gzip"}
    page = urllib.request.Request(f"{server.simple_url}beta/", headers=pip_headers)  # noqa: S310
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(page) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert json.loads(gzip.decompress(resp.read())) == simple_json(server, "beta")
    python = make_venv(tmp_path / "venv", env, pip=True)
    result = pip_install(python, server.simple_url, env, "beta")
    assert result.returncode == 0, describe(result)
    assert "alpha" in result.stdout, describe(result)
    check = run([python, "-c", "import beta, alpha"], env=env)
    assert check.returncode == 0, describe(check)


def test_uv_pip_installs_with_dependency(
    server: Server, dists: Dists, env: dict[str, str], tmp_path: Path
) -> None:
    _publish_alpha_and_beta(server, dists, env)
    python = make_venv(tmp_path / "venv", env)
    result = run(
        [
            tool("uv"),
            "pip",
            "install",
            "--python",
            python,
            "--index-url",
            server.simple_url,
            "beta",
        ],
        env=env,
    )
    assert result.returncode == 0, describe(result)
    check = run([python, "-c", "import beta, alpha"], env=env)
    assert check.returncode == 0, describe(check)


def test_yanked_release_is_skipped_unless_pinned(
    server: Server, dists: Dists, env: dict[str, str], tmp_path: Path
) -> None:
    old, new = dists.wheel("gamma", "1.0"), dists.wheel("gamma", "2.0")
    publish(server, env, old, new)
    yank = server.cli("yank", "gamma", "2.0", "--reason", "broken")
    assert yank.returncode == 0, (yank.stdout, yank.stderr)

    files = {f["filename"]: f for f in simple_json(server, "gamma")["files"]}
    assert files[new.name].get("yanked") == "broken"
    assert not files[old.name].get("yanked")
    assert simple_html(server, "gamma")[new.name].get("data-yanked") == "broken"
    resp = http_get(f"{server.url}/pypi/gamma/json")
    assert resp.status == 200, (resp.status, resp.body[:300])
    (release,) = json.loads(resp.body)["releases"]["2.0"]
    assert release["yanked"] is True and release["yanked_reason"] == "broken", release

    python = make_venv(tmp_path / "venv", env, pip=True)
    result = pip_install(python, server.simple_url, env, "gamma")
    assert result.returncode == 0, describe(result)
    assert installed_version(python, "gamma", env) == "1.0"
    # PEP 592: an exact pin still selects the yanked release.
    pinned = pip_install(python, server.simple_url, env, "gamma==2.0")
    assert pinned.returncode == 0, describe(pinned)
    assert installed_version(python, "gamma", env) == "2.0"

    unyank = server.cli("unyank", "gamma", "2.0")
    assert unyank.returncode == 0, (unyank.stdout, unyank.stderr)
    files = {f["filename"]: f for f in simple_json(server, "gamma")["files"]}
    assert not files[new.name].get("yanked")


def test_private_index_needs_a_token(
    private_server: Server, dists: Dists, env: dict[str, str], tmp_path: Path
) -> None:
    server = private_server
    wheel = dists.wheel("epsilon", "1.0")
    publish(server, env, wheel)

    for path in ("/simple/", "/simple/epsilon/"):
        resp = http_get(server.url + path)
        assert resp.status == 401, (path, resp.status, resp.body[:300])
        assert (resp.header("www-authenticate") or "").lower().startswith("basic"), resp.headers
    entry = simple_json(server, "epsilon", token=server.token)["files"][0]
    file_url = urljoin(f"{server.simple_url}epsilon/", entry["url"])
    assert http_get(file_url).status == 401
    assert http_get(file_url, token=server.token).status == 200

    python = make_venv(tmp_path / "venv", env, pip=True)
    anonymous = pip_install(python, server.simple_url, env, "epsilon")
    assert anonymous.returncode != 0, describe(anonymous)

    reader = server.create_token("--scope", "read", "--description", "e2e reader")
    authed = pip_install(python, server.authed_simple_url(reader), env, "epsilon")
    assert authed.returncode == 0, describe(authed)
    assert installed_version(python, "epsilon", env) == "1.0"


def test_token_for_another_project_cannot_upload(
    server: Server, dists: Dists, env: dict[str, str]
) -> None:
    token = server.create_token("--scope", "upload", "--project", "alpha")
    wheel = dists.wheel("delta", "1.0")

    result = twine_upload(server, [wheel], env, token=token, extra=("--verbose",))
    assert result.returncode != 0, describe(result)
    assert "403" in result.stdout, describe(result)
    detail = re.search(r'"detail"\s*:\s*"((?:[^"\\]|\\.)+)"', result.stdout)
    assert detail, f"server's problem detail not shown\n{describe(result)}"

    published = uv_publish(server, [wheel], env, token=token, check_url=False)
    assert published.returncode != 0, describe(published)
    assert json.loads(f'"{detail.group(1)}"') in published.stdout, describe(published)

    assert http_get(f"{server.simple_url}delta/").status == 404
