"""``/_/metrics`` in-process: request counters and latency histograms labelled by route
template, publishing and file-upload sessions by state from the database, GC work through
``telemetry.record_gc``, and the replica's identity. The output is parsed with
prometheus_client's own parser, so it is valid exposition text as well as the right numbers.

The process-wide values outlive each app, so every check compares before and after."""

from __future__ import annotations

import socket

from prometheus_client.parser import text_string_to_metric_families

from pallet import __version__, telemetry
from tests.api.v2 import Uploader
from tests.dists import make_wheel


def scrape(index, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # noqa: ANN001
    """{(sample name, sorted labels): value} of one scrape."""
    r = index.client.get("/_/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def requests(samples, route: str, method: str = "GET", status: str = "200") -> float:  # noqa: ANN001
    key = (
        "pallet_http_requests_total",
        (("method", method), ("route", route), ("status", status)),
    )
    return samples.get(key, 0.0)


def test_requests_are_counted_per_route_template_not_path(index) -> None:  # noqa: ANN001
    before = scrape(index)
    for name in ("alpha", "beta", "gamma"):
        assert index.client.get(f"/simple/{name}/").status_code == 404
    assert index.client.get("/no/such/place").status_code == 404
    assert index.client.request("BREW", "/simple/alpha/").status_code == 405
    after = scrape(index)

    assert (
        requests(after, "/simple/{project}/", status="404")
        - requests(before, "/simple/{project}/", status="404")
        == 3
    )
    assert (
        requests(after, "unmatched", status="404") - requests(before, "unmatched", "GET", "404")
        == 1
    )
    # A made-up method is one label value, not one per spelling.
    assert (
        requests(after, "/simple/{project}/", "other", "405")
        - requests(before, "/simple/{project}/", "other", "405")
        == 1
    )
    routes = {
        dict(labels)["route"] for name, labels in after if name == "pallet_http_requests_total"
    }
    assert not any(name in route for route in routes for name in ("alpha", "beta", "gamma"))


def test_upload_2_routes_are_labelled_with_the_mount_prefix(index) -> None:  # noqa: ANN001
    uploader = Uploader(index, index.token())
    session = uploader.open("telemetry-mount", "1.0")
    index.client.get(session["links"]["session"], headers=uploader.headers)
    samples = scrape(index)
    routes = {
        dict(labels)["route"] for name, labels in samples if name == "pallet_http_requests_total"
    }
    assert "/upload/2.0/" in routes
    assert "/upload/2.0/sessions/{sid}/" in routes
    assert not any(session["links"]["session"].rstrip("/").rsplit("/", 1)[-1] in r for r in routes)


def test_latency_histograms_have_buckets(index) -> None:  # noqa: ANN001
    index.client.get("/simple/")
    samples = scrape(index)
    labels = (("method", "GET"), ("route", "/simple/"), ("status", "200"))
    buckets = {
        dict(lbl)["le"]: v
        for (name, lbl), v in samples.items()
        if name == "pallet_http_request_duration_seconds_bucket"
        and tuple(kv for kv in lbl if kv[0] != "le") == labels
    }
    assert len(buckets) > 10 and "+Inf" in buckets
    values = [buckets[le] for le in sorted(buckets, key=float)]
    assert values == sorted(values)  # cumulative
    count = samples[("pallet_http_request_duration_seconds_count", labels)]
    assert buckets["+Inf"] == count == requests(samples, "/simple/")
    assert samples[("pallet_http_request_duration_seconds_sum", labels)] > 0


def test_sessions_by_state_come_from_the_database(index) -> None:  # noqa: ANN001
    def states(samples) -> dict[str, float]:  # noqa: ANN001
        return {
            dict(lbl)["status"]: v
            for (name, lbl), v in samples.items()
            if name == "pallet_upload_sessions"
        }

    empty = states(scrape(index))
    assert empty == {"open": 0, "processing": 0, "published": 0, "error": 0, "canceled": 0}
    uploader = Uploader(index, index.token())
    kept = uploader.open("telemetry-states", "1.0")
    dropped = uploader.open("telemetry-dropped", "1.0")
    wheel = make_wheel(index.tmp, "telemetry-states", "1.0")
    uploader.start(kept, wheel)
    uploader.cancel(dropped)
    samples = scrape(index)
    assert states(samples) == {**empty, "open": 1, "canceled": 1}
    files = {
        (dict(lbl)["mechanism"], dict(lbl)["status"]): v
        for (name, lbl), v in samples.items()
        if name == "pallet_file_upload_sessions"
    }
    assert sum(v for (_, status), v in files.items() if status == "pending") == 1


def test_gc_work_is_counted(index) -> None:  # noqa: ANN001
    def gc(samples, kind: str) -> float:  # noqa: ANN001
        return samples.get(("pallet_gc_collected_total", (("kind", kind),)), 0.0)

    before = scrape(index)
    telemetry.record_gc({"sessions_expired": 2, "spool": 0, "blobs": 5})
    telemetry.record_gc({"sessions_expired": 1})
    after = scrape(index)
    sweeps = ("pallet_gc_sweeps_total", ())
    assert after[sweeps] - before.get(sweeps, 0.0) == 2
    assert gc(after, "sessions_expired") - gc(before, "sessions_expired") == 3
    assert gc(after, "blobs") - gc(before, "blobs") == 5
    assert after[("pallet_gc_last_sweep_timestamp_seconds", ())] > 0


def info(samples) -> dict[str, str]:  # noqa: ANN001
    [labels] = [dict(lbl) for name, lbl in samples if name == "pallet_replica_info"]
    assert samples[("pallet_replica_info", tuple(sorted(labels.items())))] == 1
    return labels


def test_replica_identity(make_index) -> None:  # noqa: ANN001
    named = make_index(replica_id="eu-1")
    assert info(scrape(named)) == {"replica": "eu-1", "version": __version__}
    default = make_index(port=8123)
    assert info(scrape(default)) == {
        "replica": f"{socket.gethostname()}:8123",
        "version": __version__,
    }


def test_private_index_hides_the_version(make_index) -> None:  # noqa: ANN001
    index = make_index(private=True, metrics_token="scrape-secret", replica_id="r9")  # noqa: S106
    assert index.client.get("/_/metrics").status_code == 401
    samples = scrape(index, authorization="Bearer scrape-secret")
    assert info(samples) == {"replica": "r9", "version": ""}
