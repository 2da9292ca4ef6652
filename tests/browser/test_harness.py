"""The harness itself: a page served on 127.0.0.1, with and without JavaScript, screenshots, the
loopback-only guard, and the HTML checks on good and bad documents."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import (
    REPO,
    _open_page,
    artefacts_dir,
    assert_labelled,
    assert_well_formed,
    screenshot,
)

pytestmark = pytest.mark.timeout(60)

EXPECT_MS = 5_000

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Pallet harness</title>
<link rel="icon" href="data:,">
<script>document.documentElement.dataset.js = "on";</script>
</head>
<body>
<main>
<h1>Pallet harness</h1>
<p id="status">Static text</p>
<noscript><p id="nojs">JavaScript is off</p></noscript>
<form action="/search" method="get">
<label for="q">Search</label>
<input id="q" name="q" type="search">
<label>Sort <select name="sort"><option>name</option><option>date</option></select></label>
<input type="hidden" name="csrf" value="x">
<button id="change" type="button">Change</button>
</form>
<svg width="10" height="10" aria-hidden="true"><rect width="10" height="10"/></svg>
</main>
<script>
document.getElementById("change").addEventListener("click", () => {
  document.getElementById("status").textContent = "Changed by JS";
});
</script>
</body>
</html>
"""


class _Handler(BaseHTTPRequestHandler):
    timeout = 10  # seconds a connection may idle

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        if self.path.split("?")[0] != "/":
            self.send_error(404)
            return
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """PAGE at ``/``, served from a thread on 127.0.0.1 (a free port), shut down afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- the browser --------------------------------------------------------------------------------


def test_click_runs_javascript_and_screenshot_is_saved(page: Page, site: str) -> None:
    response = page.goto(site)
    assert response is not None and response.ok
    expect(page).to_have_title("Pallet harness", timeout=EXPECT_MS)
    expect(page.locator("html")).to_have_attribute("data-js", "on", timeout=EXPECT_MS)
    expect(page.locator("#nojs")).to_be_hidden(timeout=EXPECT_MS)
    status = page.locator("#status")
    expect(status).to_have_text("Static text", timeout=EXPECT_MS)

    page.get_by_role("button", name="Change").click()
    expect(status).to_have_text("Changed by JS", timeout=EXPECT_MS)

    path = screenshot(page, "harness/clicked")
    assert path == artefacts_dir() / "screenshots" / "harness_clicked.png"
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000


def _assert_static_only(page: Page, site: str) -> None:
    response = page.goto(site)
    assert response is not None and response.ok
    expect(page.locator("#status")).to_have_text("Static text", timeout=EXPECT_MS)
    expect(page.locator("#nojs")).to_have_text("JavaScript is off", timeout=EXPECT_MS)
    expect(page.locator("html")).not_to_have_attribute("data-js", "on", timeout=EXPECT_MS)
    page.get_by_role("button", name="Change").click()
    expect(page.locator("#status")).to_have_text("Static text", timeout=EXPECT_MS)


def test_without_javascript_the_static_text_renders(page_no_js: Page, site: str) -> None:
    _assert_static_only(page_no_js, site)


@pytest.mark.parametrize("page", [{"java_script_enabled": False}], indirect=True)
def test_page_takes_context_options(page: Page, site: str) -> None:
    _assert_static_only(page, site)


def test_served_page_passes_the_html_checks(page: Page, site: str) -> None:
    response = page.goto(site)
    assert response is not None
    source = response.text()
    assert_well_formed(source)
    assert_labelled(source)


def test_pages_cannot_reach_other_hosts(browser: Browser, request: pytest.FixtureRequest) -> None:
    opened = _open_page(browser, request)
    blocked = next(opened)
    # Neither host names nor other IP addresses resolve in the browser: nothing leaves 127.0.0.1.
    for url in ("http://pallet-test.invalid/", "http://192.0.2.1/"):
        with pytest.raises(Exception, match="ERR_NAME_NOT_RESOLVED"):
            blocked.goto(url, timeout=3_000)
    with pytest.raises(pytest.fail.Exception, match=r"pallet-test\.invalid.*192\.0\.2\.1"):
        next(opened)


def test_artefacts_folder(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.delenv("PALLET_TEST_ARTEFACTS", raising=False)
    assert artefacts_dir() == REPO / "test-artefacts"
    monkeypatch.setenv("PALLET_TEST_ARTEFACTS", str(tmp_path))
    assert artefacts_dir() == tmp_path


# --- assert_well_formed -------------------------------------------------------------------------


def document(body: str, head: str = "<title>T</title>") -> str:
    return f"<!DOCTYPE html>\n<html>\n<head>{head}</head>\n<body>\n{body}\n</body>\n</html>\n"


def test_well_formed_accepts_a_good_document() -> None:
    assert_well_formed(PAGE)
    assert_well_formed(
        document(
            "<p>a<br>b<img src=x alt=''><br/></p>"
            "<svg><path d='M0 0'/></svg><math><mi>x</mi><mspace/></math>"
            "<script>if (a < b && '</p>') {}</script><style>p > a {}</style><!-- <div> -->"
        )
    )


@pytest.mark.parametrize(
    ("html", "message"),
    [
        (document("<div><p>x</p>"), "<div> opened at line 5, col 1 is not closed"),
        (document("<p>x</p></p>"), "line 5, col 9: stray </p>: no <p> is open"),
        (
            document("<div><span>x</div>"),
            "<span> opened at line 5, col 6 is not closed (before </div> at line 5, col 13)",
        ),
        (document("<p>x<br></br></p>"), "stray </br>: <br> is a void element"),
        (document("<div/>"), "<div/> does not close <div>"),
        (
            document("<ul><li>a<li>b</ul>"),
            "<li> opened at line 5, col 10 is not closed (before </ul>",
        ),
        (document("x").replace("<!DOCTYPE html>", ""), "no <!DOCTYPE html>"),
        (document("x").replace("<!DOCTYPE html>", "<!DOCTYPE html PUBLIC '-//W3C'>"), "is not"),
        (document("x", head=""), "no <title>"),
        (document("x", head="<title> </title>"), "<title> is empty"),
        (document("<title>again</title>"), "<title> inside <body>"),
        (document("<body>x</body>"), "2 <body> elements"),
        (document("x") + "<p>after</p>", "<p> outside <html>"),
        (document("x").replace("</head>", "</head><p>between</p>"), "outside <head> and <body>"),
        ("<!DOCTYPE html><html><body><title>T</title></body></html>", "no <head>"),
    ],
)
def test_well_formed_rejects(html: str, message: str) -> None:
    with pytest.raises(AssertionError, match="HTML is not well-formed") as failure:
        assert_well_formed(html)
    assert message in str(failure.value)


# --- assert_labelled ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        '<label for="q">Search</label><input id="q" name="q">',
        '<input id="q" name="q"><label for="q">Search</label>',
        "<label>Name <input name=name></label>",
        "<label><img src=i.png alt='Avatar'><input type=file name=f></label>",
        '<input name="q" aria-label="Search">',
        '<span id="l">Search</span><input name="q" aria-labelledby="l">',
        '<input type="hidden" name="t"><input type="submit" value="Go"><input type=image alt=Go>',
        '<label for="s">Sort</label><select id="s"><option>a</option></select>',
        "<label>Notes<textarea name=n></textarea></label>",
        "<button>Go</button>",
    ],
)
def test_labelled_accepts(html: str) -> None:
    assert_labelled(html)


@pytest.mark.parametrize(
    ("html", "message"),
    [
        ('<form>\n  <input name="q">\n</form>', '<input name="q"> at line 2, col 3 has no label'),
        ('<label for="other">Search</label><input id="q">', '<input id="q"> at line 1'),
        ('<input type="TEXT" name="q">', '<input type="TEXT" name="q">'),
        ('<input type="email" aria-label=" ">', '<input type="email">'),
        ('<input name="q" aria-labelledby="nope">', "refers to missing id(s) nope"),
        ('<label for="q"> </label><input id="q">', "has no text"),
        ("<label><select name=s><option>only option text</option></select></label>", "<select"),
        ("<textarea name=n></textarea>", '<textarea name="n">'),
        ('<label for="x">X <input name="y"></label><input id="x">', '<input name="y">'),
    ],
)
def test_labelled_rejects(html: str, message: str) -> None:
    with pytest.raises(AssertionError, match="form controls without a label") as failure:
        assert_labelled(html)
    assert message in str(failure.value)


def test_labelled_lists_every_unlabelled_control() -> None:
    with pytest.raises(AssertionError) as failure:
        assert_labelled('<input name="a">\n<label>B <input name="b"></label>\n<select name="c">')
    text = str(failure.value)
    assert '<input name="a"> at line 1' in text and '<select name="c"> at line 3' in text
    assert 'name="b"' not in text
