"""Which upload protocol a URL speaks. PEP 694 has no discovery document, so: Pallet's own
``/_/upload-api`` names both endpoints when it exists; otherwise the URL is tried as an
Upload 2.0 root (creating the session is the probe) and, if it answers like a server that does
not know the protocol, used as a legacy upload URL."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from pallet.client.transport import ClientError, Transport
from pallet.core.problems import PROBLEM_MEDIA_TYPE
from pallet.core.upload2 import MEDIA_TYPE

#: Answers from a URL that is not an Upload 2.0 root (PEP 694 names 404 and 406).
NOT_UPLOAD2 = frozenset({400, 404, 405, 406, 415, 501})


@dataclass(frozen=True)
class Endpoints:
    upload2: str | None  # an Upload 2.0 root to try first
    legacy: str | None  # where to fall back to
    known: bool = False  # both came from the index's discovery document


def _candidates(url: str) -> list[str]:
    parts = urlsplit(url)
    here = url.split("?", 1)[0].rstrip("/") + "/_/upload-api"
    origin = urlunsplit((parts.scheme, parts.netloc, "/_/upload-api", "", ""))
    return list(dict.fromkeys([here, origin]))


def discover(transport: Transport, url: str, protocol: str = "auto") -> Endpoints:
    for candidate in _candidates(url):
        try:
            response = transport.request(
                "GET", candidate, idempotent=True, headers={"Accept": "application/json"}
            )
            doc = response.json()
        except ClientError as exc:
            if exc.status is None:
                raise  # the index is unreachable: no other candidate will do better
            continue
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("upload-2.0"), str):
            upload2, legacy = doc["upload-2.0"], doc.get("legacy")
            if protocol == "legacy":
                return Endpoints(None, legacy or url, True)
            return Endpoints(upload2, None if protocol == "2.0" else legacy, True)
    if protocol == "legacy":
        return Endpoints(None, url)
    return Endpoints(url, None if protocol == "2.0" else url)


def speaks_upload2(exc: ClientError) -> bool:
    """Whether an error from creating a session came from an Upload 2.0 server (so it is the
    real answer) rather than from something that does not know the protocol."""
    response: httpx.Response | None = exc.response
    if response is None:
        return True  # a transport failure: not evidence either way, report it
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in (MEDIA_TYPE, PROBLEM_MEDIA_TYPE):
        return False
    return response.status_code not in (404, 405, 406, 501)
