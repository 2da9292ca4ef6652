"""The reserve / PUT / finalize protocol of ``uv publish --direct`` (publish URL ``/direct/``).

``reserve`` checks auth, the filename and the metadata fields and answers where to PUT the
bytes: a pre-signed URL to a staging key derived from the declared sha256 (so finalize on any
replica finds it), or ``upload_url: null`` when identical bytes are already stored, or 200 when
the identical file is already published (uv then skips it). ``finalize`` verifies the stored
object exactly like a legacy upload (size, every declared digest, archive, metadata, form vs
file) and publishes it through the one publish path. A failed finalize deletes the staged
object; nothing is published without verified bytes.
"""

from __future__ import annotations

from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pallet.auth.guard import require_uploader
from pallet.auth.tokens import Principal
from pallet.connections import early_too_large
from pallet.core.filenames import DistFilename, parse_dist_filename
from pallet.core.metadata import (
    UploadForm,
    check_form_matches,
    check_form_names_file,
    parse_upload_form,
)
from pallet.core.problems import Problem, bad_request
from pallet.core.rules import UploadRules
from pallet.core.untrusted import require_form_version
from pallet.db.models import File
from pallet.db.session import read_session
from pallet.public_url import base_url
from pallet.services import Services
from pallet.storage import blob_key
from pallet.storage.signed import presign_put
from pallet.upload.mechanisms.digests import stream_digests
from pallet.upload.publish import file_exists, publish_file
from pallet.upload.spool import SpooledFile
from pallet.upload.verify import check_digests, forbidden, upload_rules, verify_file

MAX_FIELDS = 1000
MAX_FIELD_BYTES = 16 * 2**20


def staging_key(sha256: str) -> str:
    return f"direct/{sha256}"


async def _fields(request: Request) -> dict[str, list[str]]:
    too_large = early_too_large(request.headers, MAX_FIELD_BYTES, "reserve/finalize forms")
    if too_large is not None:
        raise too_large
    try:
        form = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES)
    except HTTPException as exc:
        raise bad_request("invalid-form", "Malformed form", str(exc.detail)) from None
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise bad_request("invalid-form", "No file here", "reserve/finalize take text fields.")
        fields.setdefault(key, []).append(value)
    return fields


def _parse(
    fields: dict[str, list[str]], principal: Principal, rules: UploadRules
) -> tuple[UploadForm, DistFilename]:
    names = fields.get("filename") or []
    if len(names) != 1:
        raise bad_request("invalid-form", "Filename required", "Send exactly one 'filename'.")
    dist = parse_dist_filename(names[0], rules)
    form = parse_upload_form(fields)
    require_form_version(form.version)
    check_form_names_file(form, dist)
    if not principal.can_upload(dist.project):
        raise forbidden(dist.project)
    if "sha256" not in form.digests:
        raise bad_request(
            "missing-digest",
            "sha256 required",
            "The direct protocol needs sha256_digest: it names the upload.",
        )
    return form, dist


def _already(svc: Services, filename: str, sha256: str) -> bool:
    """True if this exact file is published; a different file under the name is a conflict."""
    with read_session(svc.engine) as s:
        row = s.query(File.sha256, File.published).filter(File.filename == filename).first()
    if row is None:
        return False
    if row.published and row.sha256 == sha256:
        return True
    raise file_exists(filename, 409)


def _reserve(svc: Services, principal: Principal, fields: dict, base_url: str) -> Response:
    form, dist = _parse(fields, principal, upload_rules(principal, svc.settings))
    sha = form.digests["sha256"]
    if _already(svc, dist.filename, sha):
        return JSONResponse({"filename": dist.filename, "status": "already uploaded"}, 200)
    if svc.store.size(blob_key(sha)) is not None:
        return JSONResponse({"upload_url": None, "upload_headers": None}, 201)
    import base64

    # uv sets Content-Type itself and adds these verbatim: a signed Content-Type would be sent
    # twice and break the signature, so only the checksum is bound (and the key names it).
    headers = {"x-amz-checksum-sha256": base64.b64encode(bytes.fromhex(sha)).decode()}
    url = presign_put(
        svc.store, svc.settings.secret_key, base_url, staging_key(sha), headers, svc.settings.presign_ttl
    )
    return JSONResponse({"upload_url": url, "upload_headers": headers}, 201)


def _finalize(svc: Services, principal: Principal, fields: dict) -> Response:
    rules = upload_rules(principal, svc.settings)
    form, dist = _parse(fields, principal, rules)
    sha = form.digests["sha256"]
    if _already(svc, dist.filename, sha):
        return JSONResponse({"filename": dist.filename, "status": "already uploaded"}, 200)
    key = staging_key(sha)
    if svc.store.size(key) is None:
        key = blob_key(sha)
        if svc.store.size(key) is None:
            raise Problem(
                409,
                "no-bytes",
                "File not uploaded",
                "Nothing was stored for this file: the PUT to the upload URL failed "
                "or was skipped. Run the upload again.",
            )
    try:
        algorithms = tuple(a for a in ("blake2_256", "md5") if a in form.digests)
        digests = stream_digests(svc, key, algorithms)  # read once, kept nowhere
        check_digests(form.digests, digests.as_dict())
        with svc.store.open(key) as reader:
            vf = verify_file(
                SpooledFile(Path(dist.filename), dist.filename, digests, _owned=False),
                claimed_digests={},
                rules=rules,
                dist=dist,
                source=reader,
            )
        check_form_matches(form, vf.metadata, vf.dist)
        if key != blob_key(sha):
            svc.store.move(key, blob_key(sha))
    except Problem:
        if key == staging_key(sha):
            svc.store.delete(key)  # a failed finalize leaves nothing behind
        raise
    published = publish_file(
        svc.engine,
        svc.store,
        vf,
        via="direct",
        quota=svc.settings.project_quota,
        conflict_status=409,
        blob_stored=True,
    )
    return JSONResponse({"filename": published.filename, "created": published.created}, 200)


async def reserve(request: Request) -> Response:
    svc: Services = request.app.state.services
    principal = await run_in_threadpool(require_uploader, svc, request)
    fields = await _fields(request)
    return await run_in_threadpool(_reserve, svc, principal, fields, base_url(request))


async def finalize(request: Request) -> Response:
    svc: Services = request.app.state.services
    principal = await run_in_threadpool(require_uploader, svc, request)
    fields = await _fields(request)
    return await run_in_threadpool(_finalize, svc, principal, fields)


routes = [
    Route(path, endpoint, methods=["POST"])
    for prefix in ("/direct/", "/direct//")
    for path, endpoint in ((prefix + "reserve", reserve), (prefix + "finalize", finalize))
]
