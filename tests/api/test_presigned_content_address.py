"""The pre-signed PUT targets the file's content address, on both backends: what may land
there, what a replay or a second upload of stored bytes gets, and when the URL stops working.

The signature binds the sha256, the length and ``If-None-Match: *``: the S3 store enforces
them itself (SeaweedFS, real), the local backend's signed endpoint the same way. A wrong,
short, long or replayed PUT never puts anything at the address, and nothing becomes visible
without ``complete`` verifying what is there.
"""

from __future__ import annotations

import urllib.parse

from tests.api.v2 import Uploader, content_key, keys
from tests.dists import make_wheel


def test_only_the_declared_bytes_land_at_the_content_address(store_index, tmp_path):
    index = store_index
    u = Uploader(index, index.token())
    session = u.open("cumulus", "1.0")
    wheel = make_wheel(tmp_path, "cumulus", "1.0")
    data = wheel.read_bytes()
    fs = u.start(session, wheel)
    m = fs["mechanism"]
    key = content_key(wheel)
    assert urllib.parse.unquote(urllib.parse.urlsplit(m["url"]).path).endswith("/" + key)
    bad = bytes([data[0] ^ 1]) + data[1:]
    assert u.put(m["url"], bad, m["headers"]).status_code == 400  # BadDigest
    for body in (data[:-1], data + b"\0"):  # the length is signed
        sent = {**m["headers"], "Content-Length": str(len(body))}
        assert u.put(m["url"], body, sent).status_code == 403
    assert key not in keys(index, "sha256")
    assert u.complete(fs).status_code == 409  # nothing arrived: still pending
    assert u.put(m["url"], data, m["headers"]).status_code == 200
    assert u.put(m["url"], data, m["headers"]).status_code == 412  # a replay stores nothing
    assert u.put(m["url"], bad, m["headers"]).status_code in (400, 412)
    assert u.complete(fs).status_code == 201
    u.publish(session)
    page = index.client.get(
        "/simple/cumulus/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    assert index.client.get(f"/simple/cumulus/{page.json()['files'][0]['url']}").content == data
    assert keys(index, "staging") == []


def test_bytes_already_stored_are_not_sent_again(store_index, tmp_path):
    """An abandoned session's bytes are at the address already: the next upload's PUT gets
    412, and ``complete`` verifies what is stored."""
    index = store_index
    u = Uploader(index, index.token())
    wheel = make_wheel(tmp_path, "stratus", "1.0")
    data = wheel.read_bytes()
    first = u.open("stratus", "1.0")
    assert u.send(u.start(first, wheel), data).status_code == 200
    u.cancel(first)
    assert content_key(wheel) in keys(index, "sha256")  # left to the orphan collector
    again = u.open("stratus", "1.0")
    fs = u.start(again, wheel)
    assert u.send(fs, data).status_code == 412
    assert u.complete(fs).status_code == 201
    u.publish(again)
    page = index.client.get(
        "/simple/stratus/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    assert index.client.get(f"/simple/stratus/{page.json()['files'][0]['url']}").content == data


def test_a_local_url_is_bound_to_its_file_session(index, tmp_path):
    """A content address does not name its file session, so the local URL carries it, signed:
    it cannot be moved to another file, and it stops working when its file is canceled."""
    u = Uploader(index, index.token())
    session = u.open("nimbostratus", "1.0")
    wheel = make_wheel(tmp_path, "nimbostratus", "1.0")
    (tmp_path / "b").mkdir()
    other = make_wheel(tmp_path / "b", "nimbostratus", "1.0", tag="py2-none-any")
    fs, fs_other = u.start(session, wheel), u.start(session, other)
    m = fs["mechanism"]
    owner = urllib.parse.parse_qs(urllib.parse.urlsplit(m["url"]).query)["X-Pallet-Owner"][0]
    assert owner.endswith("/" + fs["links"]["file-upload-session"].rstrip("/").rsplit("/", 1)[1])
    mine = fs_other["mechanism"]["url"]
    theirs = urllib.parse.parse_qs(urllib.parse.urlsplit(mine).query)["X-Pallet-Owner"][0]
    moved = m["url"].replace(
        urllib.parse.quote(owner, safe="/"), urllib.parse.quote(theirs, safe="/")
    )
    assert moved != m["url"]
    assert u.put(moved, wheel.read_bytes(), m["headers"]).status_code == 403
    u.cancel(session)
    late = u.put(m["url"], wheel.read_bytes(), m["headers"])
    assert late.status_code == 403 and late.json()["type"].endswith("upload-closed")
    assert content_key(wheel) not in keys(index, "sha256")
