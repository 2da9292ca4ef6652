"""The fuzz oracle catches what it claims to: routes that misbehave on purpose, added to the
real app, must each produce their finding (and a well-behaved refusal none)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from pallet.auth.tokens import create_token
from pallet.core.problems import Problem
from pallet.db.session import write_session

log = logging.getLogger("pallet")


def misbehave(request: Request) -> Response:
    svc = request.app.state.services
    kind = request.path_params["kind"]
    if kind == "fine":
        raise Problem(400, "bad", "Bad request", "A refusal that keeps nothing.")
    if kind == "crash":
        raise RuntimeError("boom")
    if kind == "plain":
        return PlainTextResponse("nope", status_code=404)
    if kind == "wrong-status":
        return Response(
            '{"type": "urn:x", "title": "T", "status": 418}',
            status_code=400,
            media_type="application/problem+json",
        )
    if kind == "blob":
        svc.store.put_bytes("sha256/00/" + "0" * 64, b"kept")
    elif kind == "row":
        with write_session(svc.engine) as s:
            create_token(s, svc.settings.secret_key)
    elif kind == "spool":
        svc.settings.tmp_dir.mkdir(parents=True, exist_ok=True)
        (svc.settings.tmp_dir / "left-behind").write_bytes(b"x")
    elif kind == "logged":
        try:
            raise ValueError("handled, but logged with a traceback")
        except ValueError:
            log.exception("oops")
        return Response(status_code=204)
    raise Problem(409, "conflict", "Conflict", "Refused after keeping something.")


def test_every_kind_of_finding_is_caught(make_world) -> None:  # noqa: ANN001
    world, fuzzer = make_world()
    world.client.app.router.routes.insert(0, Route("/_/misbehave/{kind}", misbehave))
    expected = {
        "fine": set(),
        "crash": {"5xx"},
        "plain": {"not-problem"},
        "wrong-status": {"bad-problem"},
        "blob": {"stored-on-refusal"},
        "row": {"stored-on-refusal"},
        "spool": {"spool-left"},
        "logged": {"traceback"},
    }
    for kind, kinds in expected.items():
        fuzzer.findings.clear()
        fuzzer.request("GET", f"/_/misbehave/{kind}")
        assert {f.kind for f in fuzzer.findings} == kinds, (kind, fuzzer.findings)
    fuzzer.findings.clear()
    fuzzer.request("GET", "/_/misbehave/crash")
    (finding,) = fuzzer.findings
    assert "RuntimeError: boom" in finding.detail  # the traceback, for the report
    assert fuzzer.server_errors == 2
