"""The web UI through the real app: pages, READMEs as PyPI renders them (and sanitised), sign-in,
publishing sessions, yanking, private mode, caching and security headers. Every page served is
checked for well-formed HTML and labelled form controls."""

from __future__ import annotations

import asyncio
import gzip
import re
import threading

import httpx
import pytest

from pallet.web import pages as web_pages
from tests.api.uploads import upload
from tests.api.v2 import Uploader
from tests.dists import make_wheel
from tests.html_checks import assert_labelled, assert_well_formed

MARKDOWN = """# Widgets

Some **bold** text, `code`, and a [link](https://example.com/docs).

<script>alert("x")</script>
[click](javascript:alert(1))
<img src="https://example.com/a.png" onerror="alert(1)">
<iframe src="https://evil.example"></iframe>
"""
RST = """Widgets
=======

A *reStructuredText* README with a `link <https://example.com/>`_.

.. code-block:: python

   print("hi")
"""


def metadata(name: str, version: str, readme: str, content_type: str, **headers: str) -> str:
    extra = "".join(f"{k}: {v}\n" for k, v in headers.items())
    return (
        f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\nSummary: {name} does things\n"
        f"Description-Content-Type: {content_type}\n{extra}\n{readme}"
    )


def publish(
    index,
    tmp_path,
    name,
    version,
    readme="Plain.",
    content_type="text/plain",
    token=None,
    **headers,
):  # noqa: ANN001, ANN003, ANN201
    wheel = make_wheel(
        tmp_path, name, version, metadata=metadata(name, version, readme, content_type, **headers)
    )
    r = upload(index.client, wheel, token or index.token(), name=name, version=version)
    assert r.status_code == 200, r.text
    return wheel


def page(index, path: str, **kw) -> str:  # noqa: ANN001, ANN003
    r = index.client.get(path, **kw)
    assert r.status_code == 200, (path, r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert_well_formed(r.text)
    assert_labelled(r.text)
    return r.text


def sign_in(index, token: str) -> None:  # noqa: ANN001
    form = page(index, "/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    r = index.client.post("/signin", data={"token": token, "csrf": csrf, "next": "/sessions"},
                          follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/sessions", r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert token.split("_", 2)[2] not in cookie  # the token's secret never travels in the cookie


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_home_project_and_release_pages(index, tmp_path):  # noqa: ANN001
    publish(index, tmp_path, "widgets", "1.0", MARKDOWN, "text/markdown",
            **{"Requires-Python": ">=3.9", "License-Expression": "MIT",
               "Project-URL": "Source, https://example.com/src",
               "Classifier": "Programming Language :: Python :: 3",
               "Requires-Dist": "httpx>=0.27"})  # fmt: skip
    publish(index, tmp_path, "widgets", "2.0rc1")
    publish(index, tmp_path, "gadgets", "0.1", RST, "text/x-rst")

    home = page(index, "/")
    assert "<strong>2</strong> projects, <strong>3</strong> files" in home
    assert "pip install --index-url http://testserver/simple/" in home
    assert "pallet publish --url http://testserver/" in home
    assert home.index("gadgets 0.1") < home.index("widgets 1.0")  # newest first

    widgets = page(index, "/project/widgets/")
    assert "<h1>widgets 1.0" in widgets  # the latest final release, not the pre-release
    assert "<strong>bold</strong>" in widgets and 'href="https://example.com/docs"' in widgets
    for hostile in ("<script", "javascript:", "onerror", "<iframe"):
        assert hostile not in widgets.lower().split('<div class="readme">')[1], hostile
    assert ">=3.9" in widgets.replace("&gt;", ">") and "MIT" in widgets
    assert 'href="https://example.com/src"' in widgets and "httpx&gt;=0.27" in widgets
    assert "Programming Language :: Python :: 3" in widgets
    assert re.search(r'2\.0rc1</a> <span class="mark">pre</span>', widgets)
    assert "widgets-1.0-py3-none-any.whl" in widgets and 'class="copy"' in widgets

    pre = page(index, "/project/widgets/2.0rc1/")
    assert '<h1>widgets 2.0rc1 <span class="mark">pre-release</span>' in pre
    gadgets = page(index, "/project/gadgets/")
    assert "<em>reStructuredText</em>" in gadgets and "<pre" in gadgets

    assert index.client.get("/project/Widgets/", follow_redirects=False).status_code == 301
    assert index.client.get("/project/nothing/").status_code == 404
    assert index.client.get("/project/widgets/9.9/").status_code == 404


def test_pages_are_cached_by_serial_and_revalidated(index, tmp_path):  # noqa: ANN001
    publish(index, tmp_path, "cached", "1.0")
    first = index.client.get("/project/cached/")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "max-age=0, must-revalidate"
    again = index.client.get("/project/cached/", headers={"If-None-Match": etag})
    assert again.status_code == 304
    publish(index, tmp_path, "cached", "1.1")
    after = index.client.get("/project/cached/", headers={"If-None-Match": etag})
    assert after.status_code == 200 and "cached 1.1" in after.text


def test_search(index, tmp_path):  # noqa: ANN001
    publish(index, tmp_path, "requests-oauthlib", "1.0")
    publish(index, tmp_path, "flask", "1.0")
    results = page(index, "/search", params={"q": "requests"})
    assert "requests-oauthlib" in results and "flask</a>" not in results
    assert "flask does things" in page(index, "/search", params={"q": "things fla"})
    for hostile in ('"', "*", "NEAR(", "a:*", "&|!()", "' OR 1=1 --", "x" * 5000, "Ünï"):
        page(index, "/search", params={"q": hostile})


def test_sign_in_sessions_publish_and_cancel(index, tmp_path):  # noqa: ANN001
    token = index.token(projects=["staged"])
    up = Uploader(index, token)
    session = up.open("staged", "1.0")
    up.upload(session, make_wheel(tmp_path, "staged", "1.0"))

    assert index.client.get("/sessions", follow_redirects=False).status_code == 303  # signed out
    r = index.client.post("/signin", data={"token": "pallet_0000000000000000_nope", "csrf": "x"})
    assert r.status_code == 403  # no CSRF nonce: refused before the token is looked at
    form = page(index, "/signin")
    r = index.client.post(
        "/signin", data={"token": "pallet_0000000000000000_x", "csrf": csrf_of(form)}
    )
    assert r.status_code == 401 and "not valid" in r.text
    sign_in(index, token)

    sessions = page(index, "/sessions")
    assert "staged 1.0" in sessions and "staged-1.0-py3-none-any.whl" in sessions
    assert re.search(r"pip install --extra-index-url http://testserver/stage/\S+/simple/", sessions)
    sid = session["links"]["session"].rstrip("/").rsplit("/", 1)[1]
    # Without the form's CSRF token nothing happens.
    assert index.client.post(f"/sessions/{sid}/publish", data={}).status_code == 403
    r = index.client.post(f"/sessions/{sid}/publish", data={"csrf": csrf_of(sessions)},
                          follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert "staged-1.0-py3-none-any.whl" in index.client.get("/simple/staged/").text

    other = up.open("staged", "2.0")
    other_sid = other["links"]["session"].rstrip("/").rsplit("/", 1)[1]
    sessions = page(index, "/sessions")
    assert "staged 2.0" in sessions
    r = index.client.post(f"/sessions/{other_sid}/cancel", data={"csrf": csrf_of(sessions)})
    assert r.status_code == 200 and "staged 2.0" not in page(index, "/sessions")

    signout = index.client.post(
        "/signout", data={"csrf": csrf_of(sessions)}, follow_redirects=False
    )
    assert signout.status_code == 303
    assert index.client.get("/sessions", follow_redirects=False).status_code == 303


def test_yank_and_unyank_with_a_reason(index, tmp_path):  # noqa: ANN001
    token = index.token(projects=["yanky"])
    publish(index, tmp_path, "yanky", "1.0", token=token)
    sign_in(index, token)
    html = page(index, "/project/yanky/1.0/")
    r = index.client.post("/project/yanky/1.0/yank",
                          data={"csrf": csrf_of(html), "action": "yank", "reason": "broken build"})  # fmt: skip
    assert r.status_code == 200
    assert 'class="mark yanked">yanked' in r.text and "Yanked: broken build" in r.text
    assert 'data-yanked="broken build"' in index.client.get("/simple/yanky/").text
    r = index.client.post(
        "/project/yanky/1.0/yank", data={"csrf": csrf_of(r.text), "action": "unyank"}
    )
    assert "data-yanked" not in index.client.get("/simple/yanky/").text

    outsider = index.token(projects=["elsewhere"])
    index.client.cookies.clear()
    sign_in(index, outsider)
    html = page(index, "/project/yanky/1.0/")
    assert "Yank 1.0" not in html  # no form for a token that cannot manage it
    r = index.client.post("/project/yanky/1.0/yank", data={"csrf": csrf_of(html), "action": "yank"})
    assert r.status_code == 403


@pytest.fixture
def private(make_index):  # noqa: ANN001, ANN201
    return make_index(private=True)


def test_private_mode_shows_a_stranger_only_the_sign_in_page(private, tmp_path):  # noqa: ANN001
    publish(private, tmp_path, "secret-a", "1.0")
    publish(private, tmp_path, "secret-b", "1.0")
    for path in ("/", "/project/secret-a/", "/search?q=secret", "/sessions"):
        r = private.client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/signin"), path
    signin = page(private, "/signin")
    assert "secret-a" not in signin

    sign_in(private, private.token(scope="read", projects=["secret-a"]))
    assert "<strong>1</strong> projects" in page(private, "/")
    results = page(private, "/search", params={"q": "secret"})
    assert "secret-a" in results and "secret-b" not in results
    assert private.client.get("/project/secret-b/").status_code == 403
    assert "secret-a 1.0" in page(private, "/project/secret-a/")
    assert page(private, "/project/secret-a/").count("Yank") == 0  # read-only token


def test_hostile_forms_get_a_4xx(index):  # noqa: ANN001
    csrf = csrf_of(page(index, "/signin"))
    r = index.client.post("/signin", content=b"token=" + b"x" * 20_000,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 413
    many = "&".join(f"f{i}=1" for i in range(50)) + f"&csrf={csrf}"
    r = index.client.post("/signin", content=many.encode(),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 400
    r = index.client.post(
        "/signin", content=b"\xff\xfe=%ff", headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 403  # not a form of ours: no CSRF token
    for target in ("/signin?next=https://evil.example/", "/signin?next=//evil.example/"):
        form = page(index, target)
        assert 'name="next" value="/"' in form  # never an open redirect


def test_signed_out_pages_are_compressed_like_the_simple_pages(index, tmp_path):  # noqa: ANN001
    publish(index, tmp_path, "squeezed", "1.0", readme="Words. " * 400)
    with index.client.stream("GET", "/project/squeezed/",
                             headers={"Accept-Encoding": "gzip"}) as r:  # fmt: skip
        sent = b"".join(r.iter_raw())
    plain = index.client.get("/project/squeezed/", headers={"Accept-Encoding": "identity"})
    assert r.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert gzip.decompress(sent) == plain.content and len(sent) < len(plain.content) / 3
    assert r.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"
    assert r.headers["etag"] != plain.headers["etag"]  # each coding is its own representation
    again = index.client.get("/project/squeezed/", headers={"Accept-Encoding": "gzip",
                                                            "If-None-Match": r.headers["etag"]})  # fmt: skip
    assert again.status_code == 304 and again.headers["vary"] == "Accept-Encoding"
    other = index.client.get("/project/squeezed/", headers={"Accept-Encoding": "identity",
                                                            "If-None-Match": r.headers["etag"]})  # fmt: skip
    assert other.status_code == 200


def test_visitors_arriving_together_share_one_build_of_a_page(index, tmp_path, monkeypatch):  # noqa: ANN001
    publish(index, tmp_path, "popular", "1.0")
    release, built, joined = threading.Event(), [], []
    real_project, real_run = web_pages.project, index.services.builds.run

    def slow_project(*args):  # noqa: ANN002, ANN202
        built.append(1)
        assert release.wait(10)
        return real_project(*args)

    def counting_run(key, build):  # noqa: ANN001, ANN202
        joined.append(key)
        return real_run(key, build)

    monkeypatch.setattr(web_pages, "project", slow_project)
    monkeypatch.setattr(index.services.builds, "run", counting_run)

    async def visit_together() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=index.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            visits = [asyncio.ensure_future(c.get("/project/popular/")) for _ in range(20)]
            for _ in range(2000):  # bounded: until all 20 wait on a build
                if len(joined) == 20:
                    break
                await asyncio.sleep(0.005)
            release.set()
            return await asyncio.gather(*visits)

    answers = index.client.portal.call(visit_together)
    assert len(joined) == 20 and len(built) == 1
    assert {r.status_code for r in answers} == {200}
    assert len({r.content for r in answers}) == 1 and "popular" in answers[0].text
