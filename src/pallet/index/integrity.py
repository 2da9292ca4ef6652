"""PEP 740's integrity API: ``GET /integrity/<project>/<version>/<filename>/provenance``.

The provenance object is built from what the upload stored: the attestations, verified at upload
against the trusted publisher (pallet.upload.provenance), in one bundle under that publisher.
A file without verified attestations answers 404. Files never change once published, so the
answer may be cached for a while, like PyPI's.
"""

from __future__ import annotations

import json

from packaging.utils import canonicalize_name, canonicalize_version
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pallet.auth.guard import reader
from pallet.core.problems import Problem
from pallet.db import session as db
from pallet.db.models import File, Project, Release
from pallet.index import negotiate
from pallet.services import Services

MEDIA_TYPE = "application/vnd.pypi.integrity.v1+json"
_OFFERED = (MEDIA_TYPE, "application/json")


def _media(accept: str) -> str | None:
    """The offered type the client takes with the highest ``q`` (ours first at equal ``q``); no
    header takes the first."""
    if not accept.strip():
        return MEDIA_TYPE
    best: tuple[float, str] | None = None
    for offered in _OFFERED:
        for media, q in negotiate.accepted(accept):
            if media in (offered, "*/*", "application/*"):
                if best is None or q > best[0]:
                    best = (q, offered)
    return best[1] if best else None


def _provenance(s, project: str, version: str, filename: str) -> dict | None:  # noqa: ANN001
    row = s.execute(
        select(File.attestations, File.publisher)
        .join(Release, File.release_id == Release.id)
        .join(Project, Release.project_id == Project.id)
        .where(
            File.filename == filename,
            File.published.is_(True),
            Project.normalized_name == project,
            Project.reserved_by.is_(None),
            Release.canonical_version == version,
        )
    ).one_or_none()
    if row is None or row.publisher is None or not row.attestations:
        return None
    return {
        "version": 1,
        "attestation_bundles": [{"publisher": row.publisher, "attestations": row.attestations}],
    }


async def provenance(request: Request) -> Response:
    svc: Services = request.app.state.services
    p = request.path_params
    project = canonicalize_name(p["project"])
    await reader(svc, request, project)
    media = _media(request.headers.get("accept", ""))
    if media is None:
        raise Problem(
            406,
            "not-acceptable",
            "Not acceptable",
            f"Provenance is served as {MEDIA_TYPE} or application/json.",
        )
    try:
        version = canonicalize_version(p["version"], strip_trailing_zero=True)
    except ValueError:
        version = p["version"]
    # Never a published version or filename, and PostgreSQL refuses NUL in text.
    nul = any("\x00" in text for text in (project, version, p["filename"]))
    body = (
        None
        if nul
        else await db.read(svc.engine, lambda s: _provenance(s, project, version, p["filename"]))
    )
    if body is None:
        raise Problem(
            404,
            "no-provenance",
            "Not found",
            f"No provenance available for {p['filename']}.",
            headers={"Vary": "Accept"},
        )
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        media_type=media,
        headers={"Cache-Control": "max-age=600", "Vary": "Accept"},
    )


routes = [
    Route(
        "/integrity/{project}/{version}/{filename}/provenance", provenance, methods=["GET", "HEAD"]
    ),
]
