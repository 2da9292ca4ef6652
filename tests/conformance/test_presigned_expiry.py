"""An expired pre-signed URL is refused (Pallet's own signed URLs on the local backend).

Nothing here waits for a URL to run out: on a loaded machine a two-second URL can expire before
it is used, and a fresh one with it. The server keeps its normal lifetime, and the test makes
the URL the server would hand out once that lifetime is over: the same key and signed headers,
an ``X-Pallet-Expires`` in the past, signed with the server's own key (read from its data
directory; Pallet-only). A client cannot make that URL itself (it has no key), and changing the
expiry of a real URL breaks its signature.
"""

from __future__ import annotations

import time
import urllib.parse
from datetime import datetime

import httpx
import pytest

from pallet.storage.signed import _signature
from tests.conformance.conftest import Release, Target, pallet_only
from tests.conformance.test_presigned import NAME, put

TTL = 900  # the default PALLET_PRESIGN_TTL


@pytest.fixture(autouse=True)
def _pallet(target: Target) -> None:
    pallet_only(target)


def _with_expiry(url: str, expires: int) -> str:
    """``url`` with another X-Pallet-Expires and the signature left as it was."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["X-Pallet-Expires"] = str(expires)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, safe=";/")))


def resigned(fs: dict, expires: int, secret: str) -> str:
    """The file session's upload URL as the server signs it, expiring at ``expires``."""
    m = fs["mechanism"]
    parts = urllib.parse.urlsplit(m["url"])
    query = dict(urllib.parse.parse_qsl(parts.query))
    key = urllib.parse.unquote(parts.path.split("/_/blobs/", 1)[1])
    names = [n for n in query["X-Pallet-SignedHeaders"].split(";") if n]
    sent = {k.lower(): v for k, v in m["headers"].items()}
    query["X-Pallet-Expires"] = str(expires)
    signed = {n: sent[n] for n in names}
    owner = query.get("X-Pallet-Owner")
    query["X-Pallet-Signature"] = _signature(secret, key, expires, signed, owner)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, safe=";/")))


def test_expired_url_is_refused(release: Release, target: Target):
    assert target.server is not None
    secret = (target.server.data_dir / "secret-key").read_text().strip()
    release.open()
    wheel = release.wheel()
    data = wheel.read_bytes()
    asked = int(time.time())
    fs = release.start_file(wheel, mechanism=NAME).json()
    m = fs["mechanism"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(m["url"]).query))
    expires = int(query["X-Pallet-Expires"])
    # the URL carries the expiry it advertises, at most the server's TTL after it was asked for
    assert expires == int(
        datetime.fromisoformat(m["expires-at"].replace("Z", "+00:00")).timestamp()
    )
    assert asked < expires <= int(time.time()) + TTL + 1

    # sanity: re-signing with the same expiry yields a URL the server accepts as its own ...
    assert resigned(fs, expires, secret) == m["url"]
    # ... so the same URL, past its expiry, is exactly what the server would refuse later
    stale = resigned(fs, asked - 1, secret)
    r = httpx.put(stale, content=data, headers=m["headers"], timeout=60)
    assert r.status_code == 403, r.text
    assert r.json()["type"] == "urn:pallet:problem:url-expired"

    # a client cannot push the expiry out: the signature covers it
    pushed = _with_expiry(m["url"], expires + 3600)
    r = httpx.put(pushed, content=data, headers=m["headers"], timeout=60)
    assert r.status_code == 403 and r.json()["type"] == "urn:pallet:problem:signature-mismatch"

    # the status read hands out a fresh URL, which works
    fresh = release.client.get(fs["links"]["file-upload-session"]).json()
    assert put(fresh, data).status_code in (200, 201, 204)
    assert release.complete(fresh).status_code == 201
