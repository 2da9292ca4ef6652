"""The client's HTTP layer: one-line errors, no secrets in messages, and a retry policy that
re-sends only what cannot have been done twice. ``httpx.MockTransport`` plays the server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import httpx
import pytest

from pallet.client import transport as transport_module
from pallet.client.transport import ClientError, RetryPolicy, Transport, describe_error, redact

URL = "https://pallet.example.com/upload/abc"


def response(status: int, body: bytes = b"", content_type: str = "") -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return httpx.Response(status, content=body, headers=headers)


def test_describe_error_reads_an_rfc9457_problem():
    problem = {
        "type": "urn:pallet:problem:invalid-metadata",
        "title": "Invalid metadata",
        "detail": "The wheel's METADATA is not valid.",
        "errors": [
            {"source": "version", "message": "not PEP 440"},
            {"source": "requires-python", "message": "bad specifier"},
        ],
    }
    text, parsed = describe_error(
        response(400, json.dumps(problem).encode(), "application/problem+json")
    )
    assert text == (
        "Invalid metadata: The wheel's METADATA is not valid. "
        "(version: not PEP 440; requires-python: bad specifier)"
    )
    assert parsed == problem
    assert ClientError(text, problem=parsed).slug == "invalid-metadata"


def test_describe_error_lists_at_most_five_errors():
    errors = [{"source": f"f{i}", "message": "bad"} for i in range(8)]
    text, _ = describe_error(response(400, json.dumps({"title": "T", "errors": errors}).encode()))
    assert "f4: bad" in text and "f5" not in text and text.endswith("...)")


def test_describe_error_strips_html_to_its_text():
    page = (
        b"<html><head><title>Ignored</title><style>body { color: red }</style></head>"
        b"<body><h1>413 Request Entity Too Large</h1>\n\n<p>nginx &amp; friends &lt;3</p>"
        b"<script>alert(1)</script></body></html>"
    )
    text, problem = describe_error(response(413, page, "text/html; charset=utf-8"))
    assert text == "413 Request Entity Too Large nginx & friends <3"
    assert problem == {}


def test_describe_error_plain_text_is_whitespace_folded_and_capped():
    text, _ = describe_error(response(502, b"bad\n\n  gateway " + b"x" * 1000, "text/plain"))
    assert text.startswith("bad gateway x") and len(text) == 300


def test_describe_error_on_an_empty_body_uses_the_reason_phrase():
    assert describe_error(response(503)) == ("Service Unavailable", {})
    assert describe_error(response(599)) == ("no body", {})


def test_redact_drops_the_signature_and_userinfo():
    url = "https://AKIA:secret@s3.example.com:9000/bucket/key?X-Amz-Signature=deadbeef#frag"
    assert redact(url) == "https://s3.example.com:9000/bucket/key"
    assert redact("https://host/p?token=abc") == "https://host/p"


# -- retries ------------------------------------------------------------------------------------


class Server:
    """A scripted server: one handler result per request (a status or an exception)."""

    def __init__(self, script: list[int | Exception], headers: dict[str, str] | None = None):
        self.script, self.headers = list(script), headers or {}
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(request.read())
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return httpx.Response(step, headers=self.headers)


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(transport_module, "time", SimpleNamespace(sleep=slept.append))
    return slept


@pytest.fixture
def client() -> Iterator[Callable[..., Transport]]:
    made: list[Transport] = []

    def make(server: Server, attempts: int = 4, max_delay: float = 30.0) -> Transport:
        t = Transport(
            auth=httpx.BasicAuth("__token__", "tok"),
            retry=RetryPolicy(attempts=attempts, base_delay=0, max_delay=max_delay),
        )
        t.http.close()
        t.http = httpx.Client(transport=httpx.MockTransport(server))
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("idempotent", [False, True])
def test_429_and_503_are_retried_even_when_not_idempotent(client, sleeps, status, idempotent):
    server = Server([status, status, 201])
    r = client(server).request("POST", URL, idempotent=idempotent, body=b"{}")
    assert r.status_code == 201
    assert len(server.requests) == 3 and sleeps == [0, 0]


@pytest.mark.parametrize("status", [500, 502, 504])
def test_5xx_that_may_hide_done_work_is_retried_only_when_idempotent(client, sleeps, status):
    server = Server([status, 200])
    assert client(server).request("PUT", URL, idempotent=True, body=b"x").status_code == 200
    assert len(server.requests) == 2

    server = Server([status, 200])
    with pytest.raises(ClientError) as exc:
        client(server).request("POST", URL, idempotent=False, body=b"x")
    assert exc.value.status == status and len(server.requests) == 1


def test_transport_errors_are_retried_only_when_idempotent(client, sleeps):
    server = Server([httpx.ConnectError("refused"), 200])
    assert client(server).request("GET", URL, idempotent=True).status_code == 200
    assert len(server.requests) == 2

    server = Server([httpx.ConnectError("refused"), 200])
    with pytest.raises(ClientError, match="ConnectError") as exc:
        client(server).request("POST", URL + "?sig=s3cr3t", idempotent=False)
    assert exc.value.status is None and len(server.requests) == 1
    assert "s3cr3t" not in str(exc.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
def test_4xx_is_never_retried(client, sleeps, status):
    server = Server([status, 200])
    with pytest.raises(ClientError) as exc:
        client(server).request("GET", URL, idempotent=True)
    assert exc.value.status == status and exc.value.response is not None
    assert len(server.requests) == 1 and sleeps == []


def test_gives_up_after_the_last_attempt_without_a_final_sleep(client, sleeps):
    server = Server([503])
    with pytest.raises(ClientError) as exc:
        client(server, attempts=3).request("POST", URL, idempotent=False)
    assert exc.value.status == 503
    assert len(server.requests) == 3 and len(sleeps) == 2


@pytest.mark.parametrize(
    ("value", "waited"), [("2", 2.0), ("0.5", 0.5), ("3600", 5.0), ("-4", 0.0)]
)
def test_retry_after_is_honoured_up_to_max_delay(client, sleeps, value, waited):
    server = Server([429, 200], headers={"Retry-After": value})
    client(server, max_delay=5.0).request("POST", URL, idempotent=False)
    assert sleeps == [waited]


def test_body_factory_is_called_again_for_each_attempt(client, sleeps):
    calls: list[int] = []

    def body() -> Iterator[bytes]:
        calls.append(len(calls))
        return iter([b"part-one|", b"part-two"])

    server = Server([503, 502, 200])
    client(server).request("PUT", URL, idempotent=True, body=body)
    assert calls == [0, 1, 2]
    assert server.bodies == [b"part-one|part-two"] * 3


def test_authenticate_false_sends_no_authorization(client, sleeps):
    server = Server([200])
    t = client(server)
    t.request("GET", URL, idempotent=True)
    t.request("PUT", URL, idempotent=True, body=b"x", authenticate=False)
    assert server.requests[0].headers["Authorization"].startswith("Basic ")
    assert "Authorization" not in server.requests[1].headers


def test_ok_predicate_accepts_a_non_2xx_answer(client, sleeps):
    """A pre-signed PUT treats 412 (already stored) as done, not as an error to retry."""
    server = Server([412])
    r = client(server).request("PUT", URL, idempotent=True, ok=lambda r: r.status_code == 412)
    assert r.status_code == 412 and len(server.requests) == 1


@pytest.mark.parametrize(
    "status, body, content_type",
    [
        (201, b"<html>Created, sort of</html>", "text/html"),  # a catch-all page
        (200, b'{"ok": true}', "application/json"),  # JSON, but no Upload 2.0 body
        (201, b"[]", "application/vnd.pypi.upload.v2+json"),
    ],
)
def test_an_answer_that_is_not_upload_2_is_a_client_error_that_allows_fallback(
    status, body, content_type
):
    from pallet.client.discovery import speaks_upload2
    from pallet.client.transport import v2_body

    answer = httpx.Response(
        status,
        content=body,
        headers={"Content-Type": content_type},
        request=httpx.Request("POST", URL + "?X-Amz-Signature=secret"),
    )
    with pytest.raises(ClientError) as caught:
        v2_body(answer)
    assert "not an Upload 2.0 answer" in str(caught.value)
    assert "secret" not in str(caught.value)
    assert speaks_upload2(caught.value) is (content_type.endswith("v2+json"))


def test_an_upload_2_body_is_returned_as_is():
    from pallet.client.transport import v2_body

    body = {"meta": {"api-version": "2.0"}, "links": {"session": URL}, "status": "open"}
    answer = httpx.Response(201, json=body, request=httpx.Request("POST", URL))
    assert v2_body(answer) == body


def test_default_retries_outlast_a_restart_whatever_the_jitter(monkeypatch) -> None:  # noqa: ANN001
    """A store or index restarting takes seconds; the default retries must not give up within
    ~30 s even when every random draw is the smallest possible."""
    monkeypatch.setattr(transport_module.random, "uniform", lambda low, _high: low)
    policy = RetryPolicy()
    shortest = sum(policy.delay(attempt, None) for attempt in range(policy.attempts - 1))
    assert shortest >= 30
