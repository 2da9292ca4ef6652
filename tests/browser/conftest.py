"""The browser harness: playwright's sync API driving Debian's Chromium (``scripts/chromium.sh``).

Fixtures: ``chromium_path``, ``browser`` (one headless Chromium for the tests of this package),
``page`` (a fresh context per test; ``@pytest.mark.parametrize("page", [{...}], indirect=True)``
passes context options such as ``java_script_enabled``) and ``page_no_js``. Helpers:
``screenshot``, ``assert_well_formed`` and ``assert_labelled``.

Never skipped: without a browser the tests fail, saying how to get one. Pages only reach
127.0.0.1: other host names do not resolve in the browser, and a test whose page asked for any
other host fails. A failing test's page is screenshotted into the artefacts folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.html_checks import assert_labelled, assert_well_formed  # noqa: F401 - re-exported

try:
    from playwright.sync_api import Browser, Page, sync_playwright
    from playwright.sync_api import Error as PlaywrightError
except ImportError as exc:  # pragma: no cover - a broken install, not a test outcome
    raise ImportError("playwright is missing: `make install` installs the test extra") from exc

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CHROMIUM = "/usr/bin/chromium"

# What this machine (root, no GPU, no display, a container) needs, and no traffic of Chromium's
# own. --disable-dev-shm-usage: containers often have a 64 MB /dev/shm, too small for Chromium
# (Debian's /usr/bin/chromium wrapper means to add it but its check breaks on a stacked /dev/shm
# mount). --host-resolver-rules: nothing resolves but 127.0.0.1 (the rule also catches IP literals).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
LAUNCH_TIMEOUT_MS = 30_000
ACTION_TIMEOUT_MS = 10_000  # clicks, fills, waits, screenshots
NAVIGATION_TIMEOUT_MS = 15_000
ALLOWED_HOSTS = frozenset({"127.0.0.1"})

PAGE_KEY = pytest.StashKey["Page"]()


# --- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """``PALLET_TEST_CHROMIUM`` (exported by ``make test`` from ``scripts/chromium.sh``), else
    ``/usr/bin/chromium``. Fails, never skips, when there is no browser."""
    configured = os.environ.get("PALLET_TEST_CHROMIUM", "").strip()
    path = configured or DEFAULT_CHROMIUM
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        source = (
            "from PALLET_TEST_CHROMIUM" if configured else "PALLET_TEST_CHROMIUM is unset or empty"
        )
        pytest.fail(
            f"no Chromium executable at {path} ({source}). Run `bash scripts/chromium.sh` "
            f"(installs Debian's chromium and prints its path; `make test` exports it).",
            pytrace=False,
        )
    return path


# Package scope, not session scope: playwright's sync API marks its event loop as running in this
# thread from the first call until it is stopped, so asyncio.run() fails in every later test of
# the process (tests/api calls it). Package scope still launches one browser for all of
# tests/browser, and closes it before any test of another package runs in the same process.
@pytest.fixture(scope="package")
def browser(chromium_path: str) -> Iterator[Browser]:
    """One headless Chromium (fresh temporary profile) for the tests of this package."""
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=chromium_path,
                headless=True,
                args=CHROMIUM_ARGS,
                timeout=LAUNCH_TIMEOUT_MS,
            )
        except PlaywrightError as exc:
            pytest.fail(f"could not launch {chromium_path}: {exc}", pytrace=False)
        try:
            yield launched
        finally:
            launched.close()


def _open_page(browser: Browser, request: pytest.FixtureRequest, **options: Any) -> Iterator[Page]:
    """A page in a new context, closed afterwards. Fails the test if it asked for a host other
    than 127.0.0.1."""
    context = browser.new_context(**options)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    outside: list[str] = []

    def check(url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in ALLOWED_HOSTS:
            outside.append(url)

    context.on("request", lambda r: check(r.url))
    try:
        page = context.new_page()
        request.node.stash[PAGE_KEY] = page
        yield page
    finally:
        if PAGE_KEY in request.node.stash:
            del request.node.stash[PAGE_KEY]
        context.close()
    if outside:
        pytest.fail(
            f"the page asked for hosts other than {sorted(ALLOWED_HOSTS)}: {outside}", pytrace=False
        )


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh context. Indirect parametrization passes context options, e.g.
    ``@pytest.mark.parametrize("page", [{"java_script_enabled": False}], indirect=True)``."""
    options = getattr(request, "param", {})
    if not isinstance(options, dict):
        raise TypeError(f"page's indirect param must be a dict of context options: {options!r}")
    yield from _open_page(browser, request, **options)


@pytest.fixture
def page_no_js(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh context with JavaScript disabled (what a no-JS user sees)."""
    yield from _open_page(browser, request, java_script_enabled=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ANN201
    """Screenshot the page of a failing test, and say where the PNG is in its report."""
    outcome = yield
    report = outcome.get_result()
    open_page = item.stash.get(PAGE_KEY, None)
    if report.when == "call" and report.failed and open_page is not None:
        try:
            path = screenshot(open_page, f"FAILED-{item.nodeid}")
            text = f"url: {open_page.url}\nscreenshot: {path}"
        except Exception as exc:  # noqa: BLE001 - a crashed page must not hide the failure
            text = f"no screenshot: {exc}"
        report.sections.append(("browser", text))


# --- artefacts ----------------------------------------------------------------------------------


def artefacts_dir() -> Path:
    """``PALLET_TEST_ARTEFACTS``, else ``<repo>/test-artefacts`` (git-ignored)."""
    configured = os.environ.get("PALLET_TEST_ARTEFACTS", "").strip()
    return Path(configured) if configured else REPO / "test-artefacts"


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG of ``page`` as ``<artefacts>/screenshots/<name>.png``; return its path.
    ``name`` is made file-name safe; the same name overwrites."""
    folder = artefacts_dir() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name.removesuffix(".png")).strip("._") or "page"
    path = folder / f"{stem}.png"
    page.screenshot(path=str(path), full_page=True, timeout=ACTION_TIMEOUT_MS)
    return path


# --- HTML checks --------------------------------------------------------------------------------
