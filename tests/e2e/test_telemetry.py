"""Operations telemetry against a real ``pallet serve --workers 2``.

A scrape reaches one worker at random, so the request counters must be the sum over both
workers whichever one answers: the test checks, from each worker's own value file, that both
really served some of the requests, and that every scrape reports the full total. With
``--log-format json`` every log line is a JSON object, and neither the token a request carried
(Bearer or Basic) nor its query string (a pre-signed signature) nor a stage token in its path
appears anywhere in the log.
"""

from __future__ import annotations

import base64
import json
import tempfile
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.support import Server, ServerFactory, http_get

pytestmark = pytest.mark.e2e

ROUTE = "/simple/{project}/"
SIGNATURE = "f00dfacecafe0123456789abcdef0123456789abcdef0123456789abcdef0123"
STAGE_TOKEN = "stagetokenthatmustnotbelogged0123"  # noqa: S105 - a made-up one


@pytest.fixture(scope="module")
def telemetry_server(server_factory: ServerFactory) -> Server:
    return server_factory(
        extra_args=("--workers", "2", "--log-format", "json", "--replica-id", "e2e-replica")
    )


def metrics_dir(server: Server) -> Path:
    [found] = Path(tempfile.gettempdir()).glob(f"pallet-metrics-{server.process.pid}-*")
    return found


def served_per_worker(server: Server) -> dict[int, float]:
    """{worker pid: requests it answered on ROUTE with 404}, read from its own value file."""
    out: dict[int, float] = {}
    for path in metrics_dir(server).glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(path)):
            _metric, name, labels, _help = json.loads(key)
            if name == "pallet_http_requests_total" and labels == {
                "route": ROUTE,
                "method": "GET",
                "status": "404",
            }:
                out[pid] = out.get(pid, 0) + value
    return out


def scrape(server: Server) -> dict[str, list]:
    r = http_get(f"{server.url}/_/metrics")
    assert r.status == 200, r.body
    return {
        family.name: family.samples for family in text_string_to_metric_families(r.body.decode())
    }


def routed(samples: list, **labels: str) -> float:
    return sum(s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items()))


def test_counters_are_summed_over_both_workers(telemetry_server: Server) -> None:
    sent = 0
    # Each request is a new connection; the kernel hands connections to either worker.
    while sent < 600:
        for _ in range(25):
            assert http_get(f"{telemetry_server.simple_url}telemetry-{sent}/").status == 404
            sent += 1
        if len(served_per_worker(telemetry_server)) == 2:
            break
    per_worker = served_per_worker(telemetry_server)
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker.values()), per_worker
    assert sum(per_worker.values()) == sent

    for _ in range(8):  # scrapes too land on either worker: each must see every request
        families = scrape(telemetry_server)
        labels = {"route": ROUTE, "method": "GET", "status": "404"}
        assert routed(families["pallet_http_requests"], **labels) == sent
        histogram = families["pallet_http_request_duration_seconds"]
        buckets = [s for s in histogram if s.name.endswith("_bucket") and routed([s], **labels)]
        assert len(buckets) > 10
        assert routed([s for s in buckets if s.labels["le"] == "+Inf"], **labels) == sent
        assert routed([s for s in histogram if s.name.endswith("_count")], **labels) == sent
        assert not any("telemetry-" in s.labels.get("route", "") for s in histogram)
        [info] = families["pallet_replica_info"]
        assert info.labels["replica"] == "e2e-replica" and info.value == 1
        assert families["pallet_upload_sessions"]


def test_json_logs_parse_and_hold_no_secret(telemetry_server: Server) -> None:
    token = telemetry_server.token
    basic = base64.b64encode(f"__token__:{token}".encode()).decode()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    paths = [
        f"/simple/?X-Amz-Signature={SIGNATURE}&X-Amz-Credential=AKIDEXAMPLE",
        f"/simple/telemetry-json/?X-Amz-Signature={SIGNATURE}",
        f"/stage/{STAGE_TOKEN}/simple/?X-Pallet-Signature={SIGNATURE}",
    ]
    for path in paths:
        for auth in (f"Bearer {token}", f"Basic {basic}"):
            request = urllib.request.Request(telemetry_server.url + path)  # noqa: S310
            request.add_header("Authorization", auth)
            request.add_header("Cookie", f"session={SIGNATURE}")
            try:
                opener.open(request, timeout=10).read()
            except urllib.error.HTTPError as err:
                err.read()

    log = telemetry_server.log(None)
    records = []
    for line in log.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
        else:  # only the start-up banner on stdout is not JSON
            assert not line.strip() or line.startswith(("Pallet serving", "  ")), line
    for secret in (token, basic, SIGNATURE, "X-Amz-Signature", "AKIDEXAMPLE", STAGE_TOKEN):
        assert secret not in log
    access = [r for r in records if r.get("logger") == "pallet.access"]
    mine = [r for r in access if r["route"] in ("/simple/", ROUTE, "/stage/{token}/simple/")]
    assert len([r for r in mine if r["path"].startswith(("/simple/", "/stage/"))]) >= 6
    for record in mine:
        assert set(record) >= {
            "time", "method", "path", "route", "status", "bytes", "duration_ms", "client",
            "replica",
        }  # fmt: skip
        assert "?" not in record["path"]
        assert record["replica"] == "e2e-replica"
        assert record["client"] == "127.0.0.1"
        assert isinstance(record["duration_ms"], float) and isinstance(record["bytes"], int)
    stage = [r for r in mine if r["route"] == "/stage/{token}/simple/"]
    assert stage and all(r["path"] == "/stage/***/simple/" for r in stage)
