"""The fuzz harness: send a request to the in-process app and check every answer.

For every response: no 5xx; a 4xx is an ``application/problem+json`` document whose ``type``,
``title`` and ``status`` are right and which fits the OpenAPI problem schema; a refusal stored
nothing (no new rows, no new file under ``blobs/``); no spool file is left in ``tmp/``; and the
``pallet`` logger recorded no traceback or error. Findings are collected, not raised, so one run
counts every failure; each test asserts there were none at its end and prints its counts.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from sqlalchemy import text
from starlette.routing import Match, Mount

from pallet.openapi import document
from pallet.services import Services

PROBLEM = "application/problem+json"
#: Examples per test when PALLET_FUZZ_EXAMPLES does not say otherwise.
ENV = "PALLET_FUZZ_EXAMPLES"
_TABLES = ("projects", "releases", "files", "upload_sessions", "file_upload_sessions", "tokens")


def examples(default: int) -> int:
    value = os.environ.get(ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else default


def time_limit() -> pytest.MarkDecorator:
    """pytest-timeout's limit for a fuzz module: the project's 300 s, more when
    PALLET_FUZZ_EXAMPLES asks for long runs (a whole release per example takes ~0.3 s)."""
    return pytest.mark.timeout(300 + examples(0))


def fuzz_settings(default: int) -> settings:
    return settings(
        max_examples=examples(default),
        deadline=None,
        database=None,  # no .hypothesis folder in the work tree; findings print their input
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


class LogCapture(logging.Handler):
    """Every record of the ``pallet`` logger at WARNING or above, with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        out, self.records = self.records, []
        return out


@dataclass
class Finding:
    kind: str
    method: str
    path: str
    status: int
    request: str
    detail: str
    where: str = ""  #: innermost Pallet frame of the traceback, if any

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.where or self.method, self.detail.splitlines()[0][:160])

    def __str__(self) -> str:
        return (
            f"[{self.kind}] {self.method} {self.path} -> {self.status}"
            + (f" at {self.where}" if self.where else "")
            + f"\n  request: {self.request}\n  {self.detail}"
        )


@dataclass
class Logged:
    """What the ``pallet`` logger recorded for one request."""

    exception: str  #: "Type: message" of the (last) traceback, or the message of an error
    where: str
    text: str


def logged(records: list[logging.LogRecord]) -> list[Logged]:
    out = []
    for rec in records:
        if rec.exc_info and rec.exc_info[1] is not None:
            exc = rec.exc_info[1]
            frames = traceback.extract_tb(exc.__traceback__)
            ours = [
                f
                for f in frames
                if "/pallet/" in f.filename and "/site-packages/" not in f.filename
            ]
            for f in ours:
                f.filename = f.filename.rsplit("/src/", 1)[-1]
            where = f"{ours[-1].filename}:{ours[-1].lineno}" if ours else ""
            # Pallet's own frames, innermost last, then the exception: enough to reproduce.
            text = "".join(traceback.format_list(ours[-8:])) + "".join(
                traceback.format_exception_only(exc)
            )
            out.append(
                Logged(
                    f"{type(exc).__module__}.{type(exc).__qualname__}: {shorten(str(exc), 200)}",
                    where,
                    text.rstrip(),
                )
            )
        elif rec.levelno >= logging.ERROR:
            out.append(Logged(shorten(rec.getMessage(), 300), "", rec.getMessage()))
    return out


def shorten(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]}...<{len(text)} chars>...{text[-limit // 4 :]}"


class Tree:
    """The files under a folder, listed again only where a folder's mtime moved (an entry was
    added, removed or renamed in it): the blob store grows with every example, and walking all
    of it twice per request made long runs quadratic."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        # folder -> (mtime, stable: listed well after that mtime, files, subfolders)
        self._seen: dict[str, tuple[int, bool, list[str], list[str]]] = {}

    def files(self) -> frozenset[str]:
        out: list[str] = []
        stack = [self.root]
        while stack:
            folder = stack.pop()
            try:
                mtime = os.stat(folder).st_mtime_ns
            except FileNotFoundError:
                continue
            seen = self._seen.get(folder)
            # Timestamps are coarse (a clock tick): a listing taken within a tick of the last
            # change could miss a later change that keeps the same mtime, so it is not trusted.
            if seen is None or seen[0] != mtime or not seen[1]:
                files, folders = [], []
                with os.scandir(folder) as entries:
                    for e in entries:
                        (folders if e.is_dir(follow_symlinks=False) else files).append(e.path)
                stable = time.time_ns() - mtime > 200_000_000
                seen = self._seen[folder] = (mtime, stable, files, folders)
            out.extend(seen[2])
            stack.extend(seen[3])
        prefix = len(self.root) + 1
        return frozenset(f[prefix:] for f in out)


@dataclass
class Snapshot:
    rows: tuple[int, ...]
    blobs: frozenset[str]
    spool: frozenset[str]


class Schemas:
    """Validators for the OpenAPI document's schemas, to hold responses to what it promises."""

    def __init__(self, upload_root: str) -> None:
        self.doc = document(upload_root)
        self._cache: dict[str, Draft202012Validator] = {}

    def validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._cache:
            self._cache[key] = Draft202012Validator(
                {**schema, "components": self.doc["components"]}
            )
        return self._cache[key]

    def operation(self, method: str, template: str) -> dict[str, Any] | None:
        return self.doc["paths"].get(template, {}).get(method.lower())

    def response(self, op: dict[str, Any], status: int) -> dict[str, Any] | None:
        responses = op["responses"]
        found = responses.get(str(status)) or responses.get(f"{status // 100}XX")
        if found and "$ref" in found:
            found = self.doc["components"]["responses"][found["$ref"].rsplit("/", 1)[1]]
        return found


@dataclass
class Fuzzer:
    """One app, its state checks and the tally of one test."""

    name: str
    client: Any
    services: Services
    logs: LogCapture
    schemas: Schemas
    examples: int = 0
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    server_errors: int = 0

    # --- state ---------------------------------------------------------------------------------

    tree: Tree = field(init=False)

    def __post_init__(self) -> None:
        self.tree = Tree(self.services.settings.data_dir / "blobs")

    def snapshot(self) -> Snapshot:
        with self.services.engine.connect() as conn:
            counts = conn.execute(
                text("SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {t})" for t in _TABLES))
            ).one()
        tmp = self.services.settings.tmp_dir
        spool = frozenset(p.name for p in tmp.iterdir()) if tmp.exists() else frozenset()
        return Snapshot(tuple(counts), self.tree.files(), spool)

    # --- requests ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        template: str | None = None,
        headers: dict[str, Any] | None = None,
        content: bytes | None = None,
        note: str = "",
    ) -> Any:
        """Send one request and check the answer; returns the response."""
        before = self.snapshot()
        self.logs.take()
        response = self.client.request(method, path, headers=headers or {}, content=content)
        self.requests += 1
        self.statuses[response.status_code] += 1
        described = shorten(
            {"headers": headers, "body": content if content is None else shorten(content, 400)}
            | ({"note": note} if note else {}),
            900,
        )
        self._check(method, path, template, response, before, described)
        return response

    def _finding(  # noqa: PLR0913
        self, kind: str, method: str, path: str, status: int, req: str, detail: str, where: str = ""
    ) -> None:
        self.findings.append(Finding(kind, method, shorten(path, 200), status, req, detail, where))

    def _check(
        self, method: str, path: str, template: str | None, r: Any, before: Snapshot, req: str
    ) -> None:
        status = r.status_code
        errors = logged(self.logs.take())
        if status >= 500:
            self.server_errors += 1
        if status >= 500 or errors:
            first = errors[0] if errors else Logged("(nothing logged)", "", "")
            self._finding(
                "5xx" if status >= 500 else "traceback",
                method,
                path,
                status,
                req,
                f"{first.exception}\n{shorten(first.text, 1500)}",
                first.where,
            )
        media = r.headers.get("content-type", "").split(";")[0].strip()
        body: Any = None
        if media.endswith("json") and r.content:
            try:
                body = r.json()
            except ValueError:
                self._finding("bad-json", method, path, status, req, shorten(r.content))
        if 400 <= status < 600 and method == "HEAD":  # no body, but the problem's headers
            if media != PROBLEM:
                self._finding("not-problem", method, path, status, req, f"HEAD answered {media}")
        elif 400 <= status < 600:
            problem = isinstance(body, dict) and media == PROBLEM
            if not problem:
                self._finding(
                    "not-problem", method, path, status, req, f"{media}: {shorten(r.content)}"
                )
            elif not (
                isinstance(body.get("type"), str)
                and isinstance(body.get("title"), str)
                and body.get("status") == status
            ):
                self._finding("bad-problem", method, path, status, req, shorten(body))
        if 400 <= status < 500:
            after = self.snapshot()
            grown = [t for t, b, a in zip(_TABLES, before.rows, after.rows, strict=True) if a > b]
            new_blobs = sorted(after.blobs - before.blobs)
            if grown or new_blobs:
                self._finding(
                    "stored-on-refusal",
                    method,
                    path,
                    status,
                    req,
                    f"new rows in {grown}, new blobs {new_blobs[:5]}",
                )
            spool = after.spool - before.spool
        else:
            spool = self.snapshot().spool - before.spool
        if spool:
            self._finding("spool-left", method, path, status, req, f"left in tmp/: {sorted(spool)}")
        # Starlette's TestClient decodes the path once more than a server would: so does this.
        seen = route_template(self.client.app.routes, method, unquote(r.request.url.path))
        if template is not None and status < 500 and seen == template:
            self._check_documented(method, template, r, body, media, req, path)

    def _check_documented(
        self, method: str, template: str, r: Any, body: Any, media: str, req: str, path: str
    ) -> None:
        op = self.schemas.operation(method, template)
        if op is None:
            return
        status = r.status_code
        documented = self.schemas.response(op, status)
        if documented is None:
            self._finding(
                "undocumented-status",
                method,
                path,
                status,
                req,
                f"{template}: {shorten(r.content)}",
            )
            return
        content = documented.get("content")
        if not content or body is None:
            return
        schema = (content.get(r.headers.get("content-type", "")) or content.get(media) or {}).get(
            "schema"
        )
        if schema is None:
            self._finding("undocumented-media", method, path, status, req, f"{template}: {media}")
            return
        errors = list(self.schemas.validator(schema).iter_errors(body))
        if errors:
            self._finding(
                "schema-mismatch",
                method,
                path,
                status,
                req,
                f"{template}: {shorten(errors[0].message)} in {shorten(body)}",
            )

    # --- outcome -------------------------------------------------------------------------------

    def summary(self) -> str:
        kinds = Counter(f.kind for f in self.findings)
        return (
            f"fuzz {self.name}: {self.examples} examples, {self.requests} requests, "
            f"{self.server_errors} 5xx, findings {dict(kinds)}, statuses {dict(sorted(self.statuses.items()))}"
        )

    def report(self, record_property: Any, minimum: int) -> None:
        """Print and record the counts; fail on any finding at all."""
        print(self.summary())
        record_property("fuzz_examples", self.examples)
        record_property("fuzz_requests", self.requests)
        record_property("fuzz_5xx", self.server_errors)
        assert self.examples >= minimum, f"only {self.examples} examples ran (wanted {minimum})"
        distinct: dict[tuple[str, str, str], Finding] = {}
        for f in self.findings:
            distinct.setdefault(f.key, f)
        listing = "\n\n".join(str(f) for f in list(distinct.values())[:25])
        assert not distinct, f"{self.summary()}\n{len(distinct)} distinct findings:\n\n{listing}"


def route_template(routes: list, method: str, path: str) -> str | None:
    """The template of the route Starlette dispatches ``method path`` to, or None if the router
    answers itself (404, 405, a slash redirect). Mounts are followed."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    return _match(routes, scope, "")


def _match(routes: list, scope: dict, prefix: str) -> str | None:
    for route in routes:
        match, child = route.matches(scope)
        if match != Match.FULL:
            continue
        if isinstance(route, Mount):
            return _match(route.routes, {**scope, **child}, prefix + route.path)
        return re.sub(r"\{(\w+):\w+\}", r"{\1}", prefix + route.path)
    return None


def basic(token: str, user: str = "__token__") -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode("utf-8", "surrogatepass")).decode()
