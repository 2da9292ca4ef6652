"""The web UI in a real headless Chromium against a real ``pallet serve``: browse, search,
READMEs, sign in, publish a staged session, yank, and private mode. Screenshots of each step
are kept as test artefacts (``test-artefacts/screenshots/``); the project page's is the one the
README shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot
from tests.dists import make_wheel
from tests.e2e.support import Server, client_env, http_get, pallet_command, run, start_server
from tests.html_checks import assert_labelled, assert_well_formed

pytestmark = pytest.mark.timeout(180)

README_MD = """# Widgets

Widgets makes **widgets**: fast, typed and tested.

```python
import widgets
widgets.make(size=3)
```

- [Documentation](https://example.com/docs)
- `pip install widgets`
"""
README_RST = """Gadgets
=======

Gadgets, documented in *reStructuredText*.

* one
* two
"""


def _metadata(name: str, version: str, readme: str, content_type: str) -> str:
    return (
        f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n"
        f"Summary: {name.capitalize()} for every occasion\nRequires-Python: >=3.9\n"
        "License-Expression: MIT\nProject-URL: Source, https://example.com/src\n"
        "Classifier: Programming Language :: Python :: 3\nRequires-Dist: httpx>=0.27\n"
        f"Description-Content-Type: {content_type}\n\n{readme}"
    )


def _wheel(
    folder: Path, name: str, version: str, readme: str = "Plain.", kind: str = "text/plain"
) -> Path:
    return make_wheel(folder, name, version, metadata=_metadata(name, version, readme, kind))


def _publish(server: Server, tmp: Path, *dists: Path, stage: bool = False) -> dict:
    cmd = [*pallet_command(), "publish", "--url", server.url, "-t", server.token, "--json"]
    r = run([*cmd, *(["--stage"] if stage else []), *map(str, dists)], env=client_env(tmp))
    assert r.returncode == 0, r.stdout
    return json.loads(r.stdout[r.stdout.index("{") :])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("web-ui")
    started = start_server(base / "public")
    dists = base / "dists"
    dists.mkdir()
    _publish(
        started, base,
        _wheel(dists, "widgets", "1.0", README_MD, "text/markdown"),
        _wheel(dists, "gadgets", "0.3", README_RST, "text/x-rst"),
    )  # fmt: skip
    _publish(started, base, _wheel(dists, "widgets", "1.1", README_MD, "text/markdown"))
    try:
        yield started
    finally:
        started.stop()


def _checked(page: Page) -> None:
    html = page.content()
    assert_well_formed(html)
    assert_labelled(html)


def _sign_in(page: Page, server: Server, token: str) -> None:
    page.goto(f"{server.url}/signin")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def test_browse_search_and_read(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/")
    expect(page.get_by_role("heading", name="Pallet")).to_be_visible()
    expect(page.locator(".counts")).to_contain_text("2 projects")
    expect(page.locator(".snippets")).to_contain_text(
        f"pip install --index-url {server.url}/simple/"
    )
    _checked(page)
    screenshot(page, "home")

    page.get_by_label("Search projects").fill("widg")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(f"{server.url}/search?q=widg")
    page.get_by_role("link", name="widgets").click()
    expect(page.locator("main > h1")).to_have_text("widgets 1.1")
    readme = page.locator(".readme")
    expect(readme.locator("strong")).to_have_text("widgets")
    expect(readme.locator("pre")).to_contain_text("widgets.make(size=3)")
    expect(readme.get_by_role("link", name="Documentation")).to_have_attribute(
        "href", "https://example.com/docs"
    )
    expect(page.locator("table.files")).to_contain_text("widgets-1.1-py3-none-any.whl")
    expect(page.locator(".history")).to_contain_text("1.0")
    _checked(page)
    screenshot(page, "project-page")

    page.goto(f"{server.url}/project/gadgets/")
    expect(page.locator(".readme em")).to_have_text("reStructuredText")
    expect(page.locator(".readme li")).to_have_count(2)
    _checked(page)


def test_sign_in_and_publish_a_staged_session_then_yank(
    page: Page, server: Server, tmp_path: Path
) -> None:
    staged = _publish(server, tmp_path, _wheel(tmp_path, "widgets", "2.0"), stage=True)
    assert staged["releases"][0]["status"] == "staged"
    _sign_in(page, server, server.token)
    expect(page).to_have_url(f"{server.url}/")
    page.get_by_role("link", name="Publishing sessions").click()
    session = page.locator("section.session", has_text="widgets 2.0")
    expect(session).to_contain_text("widgets-2.0-py3-none-any.whl")
    expect(session).to_contain_text("pip install --extra-index-url")
    _checked(page)
    screenshot(page, "publishing-sessions")
    session.get_by_role("button", name="Publish").click()
    expect(page.locator("section.session", has_text="widgets 2.0")).to_have_count(0)

    page.goto(f"{server.url}/project/widgets/")
    expect(page.locator("main > h1")).to_have_text("widgets 2.0")
    simple = http_get(f"{server.url}/simple/widgets/").body.decode()
    assert "widgets-2.0-py3-none-any.whl" in simple

    page.goto(f"{server.url}/project/widgets/1.0/")
    page.get_by_label("Reason").fill("broken on Windows")
    page.get_by_role("button", name="Yank 1.0").click()
    expect(page.locator("h1 .yanked")).to_have_text("yanked")
    expect(page.locator(".notice")).to_contain_text("broken on Windows")
    _checked(page)
    screenshot(page, "yanked-release")
    assert (
        'data-yanked="broken on Windows"' in http_get(f"{server.url}/simple/widgets/").body.decode()
    )


def test_private_mode_shows_only_the_sign_in_page(
    page: Page, tmp_path_factory: pytest.TempPathFactory
) -> None:
    private = start_server(tmp_path_factory.mktemp("web-private"), private=True)
    try:
        _publish(
            private,
            tmp_path_factory.mktemp("d"),
            _wheel(tmp_path_factory.mktemp("w"), "hidden", "1.0"),
        )
        for path in ("/", "/project/hidden/", "/search?q=hidden"):
            page.goto(f"{private.url}{path}")
            expect(page).to_have_url(
                f"{private.url}/signin?next={path.replace('?', '%3F').replace('=', '%3D')}"
            )
            assert "hidden" not in page.locator("main").inner_text()
        screenshot(page, "private-sign-in")
        _sign_in(page, private, private.token)
        page.goto(f"{private.url}/project/hidden/")
        expect(page.locator("main > h1")).to_have_text("hidden 1.0")
    finally:
        private.stop()
