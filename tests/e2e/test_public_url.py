"""A real ``pallet serve`` believes X-Forwarded-Proto only from the proxies it was told to trust,
and answers to no Host it was not told about."""

from __future__ import annotations

import http.client
import json

import pytest

from tests.e2e.support import Server, ServerFactory

pytestmark = pytest.mark.e2e


def discovery(server: Server, headers: dict[str, str]) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", "/_/upload-api", headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_forwarded_headers_only_from_trusted_proxies(server_factory: ServerFactory) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    plain = server_factory()
    status, doc = discovery(plain, forwarded)
    assert status == 200 and doc["simple"].startswith("http://127.0.0.1:")
    behind_proxy = server_factory(extra_args=("--forwarded-allow-ips", "127.0.0.1"))
    status, doc = discovery(behind_proxy, forwarded)
    assert status == 200 and doc["simple"].startswith("https://127.0.0.1:")


def test_host_check_and_base_url_on_a_real_server(server_factory: ServerFactory) -> None:
    default = server_factory()
    status, problem = discovery(default, {"Host": "evil.example"})
    assert status == 400 and problem["type"] == "urn:pallet:problem:host-not-allowed"
    fixed = server_factory(extra_args=("--base-url", "https://pypi.example.com"))
    status, doc = discovery(fixed, {"Host": "evil.example"})
    assert status == 200 and doc["legacy"] == "https://pypi.example.com/legacy/"
