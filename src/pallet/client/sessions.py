"""Client side of PEP 694's two resources. Only server-provided links are followed; every
``processing`` state is polled honouring ``Retry-After``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from pallet.client.transport import Api, ClientError, v2_body

POLL_MIN, POLL_MAX = 0.2, 10.0
#: What a repeated action answers once the first one (whose answer was lost) took effect.
STATE_CONFLICTS = frozenset({"file-upload-state-conflict", "session-state-conflict"})


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", "1")), POLL_MIN), POLL_MAX)
    except ValueError:
        return 1.0


class Resource:
    """A session or file-upload session: its last body, refreshed from its status URL."""

    status_link = ""

    def __init__(self, api: Api, body: dict[str, Any]) -> None:
        self.api = api
        self.body = body
        self.lifetime = self._remaining() or 0.0  # what one extension asks for

    @property
    def url(self) -> str:
        url: str = self.body["links"][self.status_link]  # the server's JSON
        return url

    @property
    def status(self) -> str:
        return str(self.body.get("status"))

    @property
    def links(self) -> dict[str, str]:
        return self.body.get("links") or {}

    def _remaining(self) -> float | None:
        expires = parse_time(self.body.get("expires-at"))
        return None if expires is None else expires - time.time()

    def refresh(self) -> httpx.Response:
        response = self.api.get(self.url)
        self.body = v2_body(response)
        return response

    def wait_while(
        self, states: tuple[str, ...], timeout: float, last: httpx.Response | None = None
    ) -> None:
        """Poll until the status leaves ``states`` (bounded by ``timeout`` seconds), waiting as
        long as each answer's ``Retry-After`` says (``last`` is the answer to start from)."""
        deadline = time.monotonic() + timeout
        while self.status in states:
            if time.monotonic() > deadline:
                raise ClientError(f"still {self.status} after {timeout:.0f}s: {self.url}")
            time.sleep(_retry_after(last) if last is not None else 1.0)
            last = self.refresh()

    def _act(self, link: str, done: str, timeout: float) -> None:
        """POST an action (complete, publish), then wait out ``processing``. A lost answer is
        recovered by reading the status instead of acting twice."""
        try:
            response = self.api.post(self.links[link], {})
            self.body = v2_body(response)
        except ClientError as exc:
            if exc.status is not None and exc.status < 500 and exc.slug not in STATE_CONFLICTS:
                raise
            response = self.refresh()
            if self.status not in ("processing", done):
                raise
        self.wait_while(("processing",), timeout, response)

    def delete(self) -> None:
        """DELETE the resource (cancel a session, drop a file); already gone is fine."""
        try:
            self.api.delete(self.url)
        except ClientError as exc:
            if exc.status != 404:
                raise

    def extend_if_due(self) -> bool:
        """Ask for another lifetime once less than a quarter of it (or a minute) is left."""
        remaining, link = self._remaining(), self.links.get("extend")
        if remaining is None or not link or remaining > max(60.0, self.lifetime / 4):
            return False
        response = self.api.post(link, {"extend-for": max(int(self.lifetime), 60)}, idempotent=True)
        self.body = v2_body(response)
        return True


class FileUpload(Resource):
    status_link = "file-upload-session"

    @property
    def mechanism(self) -> dict[str, Any]:
        return self.body.get("mechanism") or {}

    def complete(self, timeout: float) -> None:
        self._act("complete", "completed", timeout)
        if self.status != "completed":
            raise ClientError(f"the server left the file {self.status}")


class PublishingSession(Resource):
    status_link = "session"

    @classmethod
    def open(
        cls, api: Api, root: str, name: str, version: str, *, resume: bool
    ) -> PublishingSession:
        try:
            response = api.post(
                root, {"name": name, "version": version}, ok=lambda r: r.status_code == 201
            )
        except ClientError as exc:
            location = exc.response.headers.get("location") if exc.response is not None else None
            if exc.status != 409 or not location:
                raise
            if not resume:
                raise ClientError(
                    f"a publishing session for {name} {version} is already open at {location}; "
                    "continue it with --resume, or end it with `pallet session cancel "
                    f"{location}`",
                    status=409,
                ) from None
            return cls.attach(api, location)
        return cls(api, v2_body(response))

    @classmethod
    def attach(cls, api: Api, url: str) -> PublishingSession:
        return cls(api, v2_body(api.get(url)))

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return self.body.get("files") or {}

    @property
    def stage(self) -> str | None:
        return self.links.get("stage")

    @property
    def notices(self) -> list[str]:
        return list(self.body.get("notices") or [])

    def new_file(
        self, filename: str, size: int, hashes: dict[str, str], mechanism: str
    ) -> FileUpload:
        payload = {"filename": filename, "size": size, "hashes": hashes, "mechanism": mechanism}
        response = self.api.post(self.links["upload"], payload, ok=lambda r: r.status_code == 202)
        return FileUpload(self.api, v2_body(response))

    def file(self, filename: str) -> FileUpload | None:
        entry = self.files.get(filename)
        if not entry or not entry.get("link"):
            return None
        return FileUpload(self.api, v2_body(self.api.get(entry["link"])))

    def publish(self, timeout: float) -> None:
        self._act("publish", "published", timeout)
        if self.status != "published":
            why = "; ".join(self.notices) or f"the session is {self.status}"
            raise ClientError(f"publishing failed: {why}")

    def cancel(self) -> None:
        self.delete()


class Keepalive:
    """Extends the session and its in-flight file sessions before they expire, from a daemon
    thread, so a slow upload is not canceled under the client's feet."""

    def __init__(self, resources: Callable[[], list[Resource]], interval: float = 15.0) -> None:
        self._resources = resources
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pallet-keepalive", daemon=True)
        self.extensions = 0

    def _tick(self) -> float:
        """Often enough for the shortest lifetime in play (an index may grant only minutes)."""
        lifetimes = [r.lifetime for r in self._resources() if r.lifetime > 0]
        return max(0.5, min([self._interval, *(t / 8 for t in lifetimes)]))

    def __enter__(self) -> Keepalive:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._tick()):
            for resource in self._resources():
                try:
                    self.extensions += resource.extend_if_due()
                except ClientError:
                    pass  # the session may have just ended; the main flow reports for real
