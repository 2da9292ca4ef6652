"""Stage previews (PEP 694): ``/stage/<session-token>/simple/`` is an index showing the project as
it would look once the session is published — its published files plus the session's completed
ones — for ``pip install --extra-index-url``. On a public index the token is the capability, as
the PEP specifies; on a private one a stage is a read like any other, so the credential must
also cover the session's project. A stage serves nothing but that project's files, and it dies
when the session is published or canceled."""

from __future__ import annotations

import re
from types import SimpleNamespace

from packaging.utils import canonicalize_name
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pallet.auth.guard import reader, require_reader
from pallet.core.problems import Problem
from pallet.core.sessions import FileState, SessionState
from pallet.db.models import FileUploadSession, Project, UploadSession
from pallet.db.session import read_session
from pallet.index import queries, render
from pallet.index.cache import Rendered
from pallet.index.downloads import _lookup, serve_blob
from pallet.index.model import ProjectList
from pallet.index.routes import _respond
from pallet.public_url import redirect
from pallet.services import Services

_LIVE = (SessionState.OPEN, SessionState.PROCESSING, SessionState.ERROR)


def _gone() -> Problem:
    return Problem(
        404,
        "stage-not-found",
        "No such stage",
        "This stage does not exist, or its session was published or canceled.",
    )


_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _stage(s, token: str) -> tuple[UploadSession, Project, list[FileUploadSession]]:  # noqa: ANN001
    if not _TOKEN.fullmatch(token):  # tokens are ours (url-safe base64): never a NUL for SQL
        raise _gone()
    session = s.execute(
        select(UploadSession).where(UploadSession.stage_token == token)
    ).scalar_one_or_none()
    if session is None or session.status not in _LIVE:
        raise _gone()
    project = s.execute(
        select(Project).where(Project.normalized_name == session.normalized_name)
    ).scalar_one()
    staged = list(
        s.execute(
            select(FileUploadSession).where(
                FileUploadSession.session_id == session.id,
                FileUploadSession.status == FileState.COMPLETED,
            )
        ).scalars()
    )
    return session, project, staged


def _as_row(fs: FileUploadSession, version: str) -> SimpleNamespace:
    """A staged file shaped like a row of ``queries.project_page``'s query."""
    return SimpleNamespace(
        filename=fs.filename,
        sha256=fs.sha256,
        size=fs.size,
        upload_time=fs.created,
        requires_python=fs.requires_python,
        yanked=False,
        yanked_reason=None,
        metadata_sha256=fs.metadata_sha256,
        version=version,
        release_yanked=False,
        release_yanked_reason=None,
    )


def _page(svc: Services, request: Request, token: str, name: str | None) -> Rendered:
    with read_session(svc.engine) as s:
        session, project, staged = _stage(s, token)
        require_reader(svc, request, project.normalized_name)
        if name is None:
            listing = ProjectList(0, [(project.name, project.normalized_name)])
            return Rendered.build(0, render.list_html(listing), render.list_json(listing))
        if name != project.normalized_name:
            raise Problem(
                404,
                "not-found",
                "Project not found",
                f"This stage only holds {project.normalized_name!r}.",
            )
        page = queries.project_page(s, project, [_as_row(f, session.version) for f in staged])
        return Rendered.build(page.serial, render.project_html(page), render.project_json(page))


async def stage_list(request: Request) -> Response:
    svc: Services = request.app.state.services
    await reader(svc, request)  # private mode: 401 before anything is looked up
    entry = await run_in_threadpool(_page, svc, request, request.path_params["token"], None)
    return _no_store(_respond(request, entry, private=True))


async def stage_project(request: Request) -> Response:
    svc: Services = request.app.state.services
    token, name = request.path_params["token"], request.path_params["project"]
    normalized = canonicalize_name(name)
    if name != normalized or not request.url.path.endswith("/"):
        path = f"/stage/{token}/simple/{normalized}/"
        return redirect(request, path)
    await reader(svc, request)
    entry = await run_in_threadpool(_page, svc, request, token, normalized)
    return _no_store(_respond(request, entry, private=True))


def _staged_blob(
    svc: Services, request: Request, token: str, sha256: str, filename: str
) -> str | None:
    wants_metadata = filename.endswith(".metadata")
    name = filename.removesuffix(".metadata") if wants_metadata else filename
    with read_session(svc.engine) as s:
        _session, project, staged = _stage(s, token)
    require_reader(svc, request, project.normalized_name)
    for fs in staged:
        if fs.filename == name and fs.sha256 == sha256:
            return fs.metadata_sha256 if wants_metadata else fs.sha256
    found = _lookup(svc, sha256, filename)
    # Only the session's own project: a stage token is no key to the rest of the index.
    return found[0] if found and found[1] == project.normalized_name else None


async def stage_download(request: Request) -> Response:
    svc: Services = request.app.state.services
    p = request.path_params
    await reader(svc, request)
    blob = await run_in_threadpool(
        _staged_blob, svc, request, p["token"], p["sha256"], p["filename"]
    )
    if blob is None:
        raise Problem(404, "not-found", "File not found", "No such file in this stage.")
    return await serve_blob(request, svc, blob, p["filename"])


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


routes = [
    Route("/stage/{token}/simple/", stage_list, methods=["GET", "HEAD"]),
    Route("/stage/{token}/simple/{project}/", stage_project, methods=["GET", "HEAD"]),
    Route("/stage/{token}/simple/{project}", stage_project, methods=["GET", "HEAD"]),
    Route("/stage/{token}/files/{sha256}/{filename}", stage_download, methods=["GET", "HEAD"]),
]
