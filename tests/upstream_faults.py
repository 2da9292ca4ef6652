"""A fault-injecting front for a real upstream index, on loopback: it forwards every request to
the index behind it and keeps an access log, and on cue answers 5xx, drops the connection,
truncates or corrupts file bytes, or sends a page whose ``_last-serial`` went back.

Tests read ``paths`` to prove what an upstream was (and was not) asked."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class FaultyUpstream:
    def __init__(self, behind: str) -> None:
        self.behind = behind.rstrip("/")
        self.paths: list[str] = []
        self.fault: str | None = None  # "503", "drop", "truncate", "corrupt", "regress", "hold"
        self.gate = threading.Event()  # "hold": page requests wait for it (bounded)
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=30, trust_env=False)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # the log is ``paths``
                pass

            def do_GET(self) -> None:  # noqa: N802
                owner._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def asked_for(self, fragment: str) -> list[str]:
        with self._lock:
            return [p for p in self.paths if fragment in p]

    def wait_until_asked(self, fragment: str, count: int = 1, limit: float = 30) -> None:
        for _ in range(int(limit / 0.02)):
            if len(self.asked_for(fragment)) >= count:
                return
            threading.Event().wait(0.02)
        raise AssertionError(f"the upstream was not asked for {fragment!r} {count} time(s)")

    def files_fetched(self) -> list[str]:
        return self.asked_for("/files/")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.paths.append(handler.path)
        fault = self.fault
        if fault == "hold" and "/simple/" in handler.path:
            self.gate.wait(timeout=30)
        if fault == "503":
            body = b"upstream trouble"
            handler.send_response(503)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        if fault == "drop":
            handler.close_connection = True
            handler.connection.close()
            return
        dropped = {"host", "accept-encoding"}
        if fault == "regress":  # a full page, so the regression shows (not a 304)
            dropped.add("if-none-match")
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in dropped}
        upstream = self._http.get(self.behind + handler.path, headers=headers)
        body = upstream.content
        is_file = "/files/" in handler.path
        if is_file and fault == "corrupt" and body:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        if fault == "regress" and "json" in upstream.headers.get("content-type", ""):
            doc = json.loads(body)
            doc["meta"]["_last-serial"] = 0
            body = json.dumps(doc).encode()
        handler.send_response(upstream.status_code)
        for key, value in upstream.headers.items():
            if key.lower() not in _HOP:
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if is_file and fault == "truncate":
            handler.wfile.write(body[: len(body) // 2])
            handler.close_connection = True
            return
        handler.wfile.write(body)
