"""Upload 2.0 endpoints (PEP 694). Each one: negotiate, authenticate, parse, then do its work
in one write transaction, re-checking the caller's permission every time."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from pallet.auth.guard import require_uploader
from pallet.connections import early_too_large, read_bounded
from pallet.core import upload2
from pallet.core.attestations import parse_attestations
from pallet.core.problems import Problem
from pallet.db import session as db
from pallet.db.models import FileUploadSession
from pallet.services import Services
from pallet.upload.mechanisms import REGISTRY
from pallet.upload.mechanisms.base import FileHandler
from pallet.upload.provenance import attested_by
from pallet.upload.v2 import actions, files, sessions
from pallet.upload.v2 import complete as completion
from pallet.upload.v2.bodies import file_body, session_body
from pallet.upload.v2.context import (
    Ctx,
    Handler,
    JSONish,
    file_endpoint,
    links_for,
    negotiate,
    purge_after,
    session_endpoint,
    v2_response,
)
from pallet.upload.v2.sessions import Purge
from pallet.upload.verify import upload_rules

_MAX_ATTESTATIONS = 4 * 2**20


async def _raw_body(request: Request) -> bytes:
    """The JSON body's bytes, refused early (413) past ``upload2.MAX_BODY``."""
    too_large = early_too_large(request.headers, upload2.MAX_BODY, "Upload 2.0 JSON bodies")
    if too_large is not None:
        raise too_large
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > upload2.MAX_BODY:
            break  # parse_body answers 413
    return bytes(raw)


def _parse(request: Request, raw: bytes) -> JSONish:
    upload2.check_content_type(request.headers.get("content-type"))
    return upload2.parse_body(raw)


async def _json_body(request: Request) -> JSONish:
    upload2.check_content_type(request.headers.get("content-type"))
    return upload2.parse_body(await _raw_body(request))


# --- publishing sessions ---------------------------------------------------------------


async def create_session(request: Request) -> Response:
    svc = negotiate(request)
    raw = await _raw_body(request)
    links = links_for(request, svc)

    def work(s: Session) -> JSONish:
        # One transaction checks the token, the body and the name, and opens the session.
        principal = require_uploader(svc, request, s)
        name, normalized, version = upload2.parse_create_session(_parse(request, raw))
        session = sessions.create(s, svc.settings, principal, name, normalized, version)
        return session_body(links, session, [])

    try:
        result = await db.write(svc.engine, work)
    except Problem as exc:
        if exc.slug == "session-exists":
            exc.headers["Location"] = links.session(exc.extra.pop("session-id"))
        raise
    location = result["links"]["session"]
    return v2_response(result, 201, {"Location": location})


async def get_session(request: Request, svc: Services, ctx: Ctx) -> Response:
    def work(s: Session) -> JSONish:
        session, _ = sessions.load(s, ctx.sid, ctx.principal)
        return session_body(ctx.links, session, sessions.files_of(s, session))

    body = await db.write(svc.engine, work)
    headers = {"Retry-After": "1"} if body["status"] == "processing" else None
    return v2_response(body, headers=headers)


async def cancel_session(request: Request, svc: Services, ctx: Ctx) -> Response:
    await actions.cancel(svc, ctx.principal, ctx.sid)
    return Response(status_code=204)


async def extend_session(request: Request, svc: Services, ctx: Ctx) -> Response:
    seconds = upload2.parse_extend(await _json_body(request))

    def work(s: Session) -> JSONish:
        session, _ = sessions.load(s, ctx.sid, ctx.principal, for_update=True)
        sessions.extend(session, svc.settings, seconds)
        return session_body(ctx.links, session, sessions.files_of(s, session))

    return v2_response(await db.write(svc.engine, work))


async def publish_session(request: Request, svc: Services, ctx: Ctx) -> Response:
    await _json_body(request)
    body = await actions.publish(svc, request, ctx.principal, ctx.sid)
    headers = {"Location": ctx.links.session(ctx.sid)}
    if body["status"] == "processing":
        headers["Retry-After"] = "1"
        return v2_response(body, 202, headers)
    return v2_response(body, 201, headers)


# --- file upload sessions --------------------------------------------------------------


async def create_file(request: Request, svc: Services, ctx: Ctx) -> Response:
    filename, size, hashes, mechanism = upload2.parse_create_file(
        await _json_body(request), svc.settings.max_file_size
    )

    def work(s: Session) -> JSONish:
        session, _ = sessions.load(s, ctx.sid, ctx.principal, for_update=True)
        rules = upload_rules(ctx.principal, svc.settings)
        fs = files.create(s, svc, session, filename, size, hashes, mechanism, rules)
        return file_body(svc, ctx.links, session, fs)

    try:
        # A mechanism whose preparation calls the object store runs on a worker thread.
        chosen = REGISTRY.get(mechanism)  # unknown: files.create answers 422
        inline = chosen is None or not chosen.prepares_in_store(svc)
        body = await db.write(svc.engine, work, inline=inline)
    except IntegrityError:
        raise Problem(
            409,
            "file-in-session",
            "File already in this session",
            f"{filename!r} was added to this session concurrently.",
        ) from None
    location = body["links"]["file-upload-session"]
    return v2_response(body, 202, {"Retry-After": "1", "Location": location})


async def get_file(request: Request, svc: Services, ctx: Ctx) -> Response:
    def work(s: Session) -> JSONish:
        session, _ = sessions.load(s, ctx.sid, ctx.principal)
        return file_body(svc, ctx.links, session, files.load(s, session, ctx.fid or ""))

    body = await db.write(svc.engine, work)
    pending = body["status"] in ("pending", "processing")
    return v2_response(body, headers={"Retry-After": "1"} if pending else None)


async def delete_file(request: Request, svc: Services, ctx: Ctx) -> Response:
    def work(s: Session) -> Purge:
        session, _ = sessions.load(s, ctx.sid, ctx.principal, for_update=True)
        return sessions.delete_file(files.load(s, session, ctx.fid or ""), session)

    await purge_after(svc, await db.write(svc.engine, work))
    return Response(status_code=204)


async def extend_file(request: Request, svc: Services, ctx: Ctx) -> Response:
    seconds = upload2.parse_extend(await _json_body(request))

    def work(s: Session) -> JSONish:
        session, _ = sessions.load(s, ctx.sid, ctx.principal, for_update=True)
        fs = files.load(s, session, ctx.fid or "")
        files.extend(session, fs, seconds)
        return file_body(svc, ctx.links, session, fs)

    return v2_response(await db.write(svc.engine, work))


async def complete_file(request: Request, svc: Services, ctx: Ctx) -> Response:
    await _json_body(request)
    body = await completion.complete(svc, ctx)
    headers = {"Location": ctx.links.file(ctx.sid, ctx.fid or "")}
    if body["status"] == "processing":
        headers["Retry-After"] = "1"
        return v2_response(body, 202, headers)
    return v2_response(body, 201, headers)


async def receive_attestations(request: Request, svc: Services, ctx: Ctx) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Attestations are a JSON array sent as application/json.",
        )
    raw = await read_bounded(request, _MAX_ATTESTATIONS, "Attestation bodies")
    fs = ctx.file
    assert fs is not None and ctx.session is not None
    files.check_transfer(ctx.session, fs)
    if fs.received_size is None:
        raise Problem(
            409,
            "no-bytes",
            "No file received",
            "Send the file before its attestations: they are checked against it.",
        )
    state = fs.mechanism_state
    assert state is not None  # stored with received_size (Ctx.store_received)
    digest = state["digests"]["sha256"]

    class _Digest:
        sha256 = digest

    def checked() -> tuple[list, dict | None]:
        attestations = parse_attestations(raw.decode("utf-8", "replace"), fs.filename, _Digest())
        publisher = attested_by(ctx.principal, attestations, fs.filename, digest, svc.settings)
        return attestations, publisher

    # Up to 4 MiB of JSON, the statements inside and their signatures: off the event loop.
    attestations, publisher = await run_in_threadpool(checked)

    def attach(f: FileUploadSession) -> None:
        f.attestations = attestations
        f.publisher = publisher

    await run_in_threadpool(ctx.update_file, attach)
    return Response(status_code=204)


def routes(root: str) -> list:
    files_url = "/sessions/{sid}/files/{fid}/"
    inner = [
        Route("/", create_session, methods=["POST"]),
        Route("/sessions/{sid}/", session_endpoint(get_session), methods=["GET"]),
        Route("/sessions/{sid}/", session_endpoint(cancel_session), methods=["DELETE"]),
        Route("/sessions/{sid}/publish", session_endpoint(publish_session), methods=["POST"]),
        Route("/sessions/{sid}/extend", session_endpoint(extend_session), methods=["POST"]),
        Route("/sessions/{sid}/files/", session_endpoint(create_file), methods=["POST"]),
        Route("/sessions/{sid}/files/{fid}/", file_endpoint(get_file), methods=["GET"]),
        Route("/sessions/{sid}/files/{fid}/", file_endpoint(delete_file), methods=["DELETE"]),
        Route(
            "/sessions/{sid}/files/{fid}/complete", file_endpoint(complete_file), methods=["POST"]
        ),
        Route("/sessions/{sid}/files/{fid}/extend", file_endpoint(extend_file), methods=["POST"]),
    ]
    inner.append(
        Route(files_url + "attestations", file_endpoint(receive_attestations), methods=["POST"])
    )
    # A mechanism's own endpoints live under the file-upload session URL too, behind the same
    # negotiation, authentication and session loading as every other file endpoint.
    for mechanism in REGISTRY.values():
        for extra in mechanism.routes():
            handler = file_endpoint(_only_for(mechanism.name, extra.handler))
            inner.append(Route(files_url + extra.action, handler, methods=[extra.method]))
    return [Mount(root.rstrip("/"), routes=inner)]


def _only_for(name: str, handler: FileHandler) -> Handler:
    """A mechanism's endpoint answers only for files that use that mechanism."""

    async def endpoint(request: Request, svc: Services, ctx: Ctx) -> Response:
        if ctx.file is None or ctx.file.mechanism != name:
            raise Problem(
                404,
                "not-found",
                "Not found",
                f"This endpoint belongs to the {name} mechanism, which this file does not use.",
            )
        return await handler(request, svc, ctx)

    return endpoint
