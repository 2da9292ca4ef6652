"""Telemetry pieces that need no server: argument parsing leaves prometheus_client unloaded, a
killed worker's in-flight requests leave the sum, JSON log records, the text access log's
masking of stage tokens, and route templates under a mount."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from pallet import logs
from pallet.route_template import UNMATCHED, route_template


def test_parsing_the_command_line_does_not_load_prometheus_client() -> None:
    probe = (
        "import sys\n"
        "from pallet.cli import build_parser\n"
        "build_parser(['serve', '--log-format', 'json', '--replica-id', 'r1'])\n"
        "print('prometheus_client' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_a_killed_workers_in_flight_requests_leave_the_sum(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    # A worker that dies mid-request, as under SIGKILL: no shutdown, nothing cleaned.
    killed = (
        "import os; from pallet import telemetry; telemetry.IN_FLIGHT.inc(); "
        "print(os.getpid(), flush=True); os._exit(0)"
    )
    pid = subprocess.run(
        [sys.executable, "-c", killed], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    left = tmp_path / f"gauge_livesum_{pid}.db"
    assert left.exists()
    scrape = "from pallet import telemetry; print(telemetry.exposition())"
    out = subprocess.run(
        [sys.executable, "-c", scrape], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "pallet_http_requests_in_flight 0.0" in out
    assert not left.exists()


@pytest.fixture
def restore_pallet_logger():  # noqa: ANN201
    logger = logging.getLogger("pallet")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def test_json_log_records(capsys: pytest.CaptureFixture[str], restore_pallet_logger) -> None:  # noqa: ANN001
    logs.configure_logging("json")
    log = logging.getLogger("pallet.test")
    log.warning("disk %s", "low")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("sweep failed")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    first, second = map(json.loads, lines)
    assert first["level"] == "WARNING" and first["logger"] == "pallet.test"
    assert first["message"] == "disk low" and first["time"].endswith("Z")
    assert "exception" not in first
    assert second["level"] == "ERROR" and second["message"] == "sweep failed"
    assert "RuntimeError: boom" in second["exception"]


def test_uvicorn_records_are_json_too() -> None:
    probe = (
        "import logging, logging.config\n"
        "from pallet.logs import uvicorn_log_config\n"
        "logging.config.dictConfig(uvicorn_log_config('json'))\n"
        "logging.getLogger('uvicorn.error').error('Exception in ASGI application')\n"
    )
    err = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stderr
    record = json.loads(err)
    assert record["logger"] == "uvicorn.error" and record["level"] == "ERROR"
    assert logs.uvicorn_log_config("text") is None


async def _ok(request):  # noqa: ANN001, ANN202
    return PlainTextResponse("ok")


def _app() -> Starlette:
    inner = [Route("/sessions/{sid}/", _ok)]
    return Starlette(
        routes=[
            Route("/stage/{token}/simple/", _ok),
            Mount("/upload/2.0", routes=inner),
        ]
    )


def test_text_access_log_masks_stage_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    client = TestClient(logs.AccessLog(_app()))
    assert client.get("/stage/s3cr3t-stage/simple/?X-Amz-Signature=abc").status_code == 200
    err = capsys.readouterr().err
    assert '"GET /stage/***/simple/" 200 2 ' in err
    assert "s3cr3t" not in err and "Signature" not in err


def test_route_templates() -> None:
    seen: list[str] = []

    async def recorder(scope, receive, send):  # noqa: ANN001, ANN202
        await app(scope, receive, send)
        seen.append(route_template(scope))

    app = _app()
    client = TestClient(recorder)
    client.get("/upload/2.0/sessions/abc123/")
    client.get("/upload/2.0/nothing/here")
    client.get("/elsewhere")
    client.get("/stage/t/simple/")
    assert seen == ["/upload/2.0/sessions/{sid}/", UNMATCHED, UNMATCHED, "/stage/{token}/simple/"]
