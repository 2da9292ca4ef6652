"""The forced-expiry test hook (pallet.testhooks): absent unless enabled, and even then only
for callers who may upload to the session's project."""

from __future__ import annotations

import json

from pallet.core.upload2 import MEDIA_TYPE

META = {"api-version": "2.0"}


def _open_session(index, token: str, name: str) -> str:  # noqa: ANN001
    r = index.client.post(
        "/upload/2.0/",
        content=json.dumps({"meta": META, "name": name, "version": "1.0"}),
        headers={"Authorization": f"Bearer {token}", "Content-Type": MEDIA_TYPE},
    )
    assert r.status_code == 201, r.text
    return r.json()["links"]["session"].rstrip("/").rsplit("/", 1)[1]


def _expire(index, token: str | None, body: object):  # noqa: ANN001, ANN202
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return index.client.post("/_/test/expire", json=body, headers=headers)


def test_hook_does_not_exist_unless_enabled(make_index):
    index = make_index()
    token = index.token()
    sid = _open_session(index, token, "hooked")
    assert _expire(index, token, {"session": sid}).status_code == 404
    r = index.client.get(
        f"/upload/2.0/sessions/{sid}/", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.json()["status"] == "open"


def test_hook_expires_only_for_uploaders_of_the_project(make_index):
    index = make_index(test_hooks=True)
    token = index.token()
    sid = _open_session(index, token, "hooked")
    assert _expire(index, None, {"session": sid}).status_code == 401
    other = index.token(projects=["someone-else"])
    assert _expire(index, other, {"session": sid}).status_code == 403
    assert _expire(index, index.token(scope="read"), {"session": sid}).status_code in (401, 403)
    assert _expire(index, token, {"session": "0" * 32}).status_code == 404
    assert _expire(index, token, {"session": sid, "file": "0" * 32}).status_code == 404
    for bad in ([], {"session": 1}, {"session": sid, "file": 2}, {"session": [[[[sid]]]]}):
        r = _expire(index, token, bad)
        assert r.status_code == 400, (bad, r.text)
    auth = {"Authorization": f"Bearer {token}"}
    assert index.client.get(f"/upload/2.0/sessions/{sid}/", headers=auth).json()["status"] == "open"
    assert _expire(index, token, {"session": sid}).status_code == 204
    body = index.client.get(f"/upload/2.0/sessions/{sid}/", headers=auth).json()
    assert body["status"] == "canceled"
    assert any("expired" in n for n in body["notices"])
