"""PyPI's JSON API (``/pypi/<name>/json`` and ``/pypi/<name>/<version>/json``), read by poetry,
dependabot, renovate and friends. Same visibility rules as the simple index."""

from __future__ import annotations

import re
from typing import Any

from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import Version
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pallet.auth.guard import reader
from pallet.core.problems import Problem
from pallet.core.untrusted import parse_version
from pallet.db.models import File, Release
from pallet.db.session import read_session
from pallet.index.queries import visible_project
from pallet.index.render import iso8601
from pallet.public_url import base_url, redirect
from pallet.services import Services

_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}")


def _file(f: File, release: Release, base: str) -> dict[str, Any]:
    yanked = f.yanked or release.yanked
    return {
        "comment_text": "",
        "digests": {"md5": f.md5, "sha256": f.sha256, "blake2b_256": f.blake2_256},
        "downloads": -1,
        "filename": f.filename,
        "has_sig": False,
        "md5_digest": f.md5,
        "packagetype": f.packagetype,
        "python_version": f.python_version,
        "requires_python": f.requires_python,
        "size": f.size,
        "upload_time": iso8601(f.upload_time)[:19],
        "upload_time_iso_8601": iso8601(f.upload_time),
        "url": f"{base}files/{f.sha256}/{f.filename}",
        "yanked": yanked,
        "yanked_reason": (f.yanked_reason if f.yanked else release.yanked_reason)
        if yanked
        else None,
    }


def _latest(releases: list[Release]) -> Release:
    def key(r: Release) -> tuple:
        v = Version(r.version)
        return (not r.yanked, not v.is_prerelease, v)

    return max(releases, key=key)


def build(svc: Services, name: str, version: str | None, base: str) -> dict[str, Any] | None:
    with read_session(svc.engine) as s:
        project = visible_project(s, canonicalize_name(name))
        if project is None:
            return None
        rows = s.execute(
            select(File, Release)
            .join(Release, File.release_id == Release.id)
            .where(Release.project_id == project.id, File.published.is_(True))
            .order_by(File.filename)
        ).all()
        by_release: dict[int, tuple[Release, list[File]]] = {}
        for f, r in rows:
            by_release.setdefault(r.id, (r, []))[1].append(f)
        if not by_release:
            return None
        releases = [r for r, _ in by_release.values()]
        if version is None:
            chosen = _latest(releases)
        else:
            parsed = parse_version(version)  # None also for segments past int()'s digit limit
            if parsed is None:
                return None
            wanted = canonicalize_version(parsed, strip_trailing_zero=True)
            matches = [r for r in releases if r.canonical_version == wanted]
            if not matches:
                return None
            chosen = matches[0]
        project_url = f"{base}pypi/{project.normalized_name}/"
        info = dict(chosen.info or {})
        info.update(
            name=project.name,
            version=chosen.version,
            yanked=chosen.yanked,
            yanked_reason=chosen.yanked_reason,
            package_url=project_url,
            project_url=project_url,
            release_url=f"{project_url}{chosen.version}/",
        )
        body: dict[str, Any] = {
            "info": info,
            "last_serial": project.last_serial,
            "urls": [_file(f, chosen, base) for f in by_release[chosen.id][1]],
            "vulnerabilities": [],
        }
        if version is None:
            ordered = sorted(by_release.values(), key=lambda rf: Version(rf[0].version))
            body["releases"] = {r.version: [_file(f, r, base) for f in fs] for r, fs in ordered}
        return body


async def project_json(request: Request) -> Response:
    svc: Services = request.app.state.services
    name = request.path_params["project"]
    version = request.path_params.get("version")
    if not _NAME.fullmatch(name) or (version is not None and len(version) > 200):
        raise Problem(404, "not-found", "Not found", "Not a valid project name or version.")
    normalized = canonicalize_name(name)
    if name != normalized:
        path = f"/pypi/{normalized}/" + (f"{version}/" if version else "") + "json"
        return redirect(request, path)
    await reader(svc, request, normalized)
    body = await run_in_threadpool(build, svc, normalized, version, base_url(request) + "/")
    if body is None:
        raise Problem(
            404, "not-found", "Not found", f"No such project or release: {name} {version or ''}"
        )
    if svc.settings.private:  # per token, like the simple pages: no shared cache may keep it
        headers = {"Cache-Control": "private, max-age=0, must-revalidate", "Vary": "Authorization"}
    else:
        headers = {"Cache-Control": "max-age=0, must-revalidate"}
    return JSONResponse(body, headers=headers)


routes = [
    Route("/pypi/{project}/json", project_json, methods=["GET", "HEAD"]),
    Route("/pypi/{project}/{version}/json", project_json, methods=["GET", "HEAD"]),
]
