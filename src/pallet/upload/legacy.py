"""The legacy upload API (``POST /legacy/``): the multipart form twine, uv, poetry, hatch and pdm
send. The file part is streamed to disk while hashed; the request is refused before any file
byte is read when the token is missing, cannot upload to the named project, or the filename is
invalid."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pallet.auth.guard import require_uploader
from pallet.auth.tokens import Principal
from pallet.core.attestations import parse_attestations
from pallet.core.filenames import parse_dist_filename
from pallet.core.metadata import check_form_matches, parse_upload_form
from pallet.core.problems import bad_request
from pallet.core.rules import UploadRules
from pallet.core.untrusted import require_form_version
from pallet.services import Services
from pallet.upload.multipart import ReceivedForm, read_upload_form
from pallet.upload.provenance import attested_by
from pallet.upload.publish import publish_file
from pallet.upload.verify import forbidden, upload_rules, verify_file


async def legacy_upload(request: Request) -> Response:
    svc: Services = request.app.state.services
    principal = await run_in_threadpool(require_uploader, svc, request)
    rules = upload_rules(principal, svc.settings)

    async def on_file_start(fields: dict[str, list[str]], filename: str) -> None:
        names = fields.get("name")
        if names and not principal.can_upload(names[0]):
            raise forbidden(names[0])
        parse_dist_filename(filename, rules)

    received = await read_upload_form(
        request, svc.settings.tmp_dir, svc.settings.max_file_size, on_file_start
    )
    try:
        published = await run_in_threadpool(_process, svc, principal, rules, received)
    finally:
        if received.file is not None:
            received.file.discard()
    return JSONResponse(
        {"filename": published.filename, "sha256": published.sha256, "created": published.created},
        status_code=200,
    )


def _process(svc: Services, principal: Principal, rules: UploadRules, received: ReceivedForm):  # noqa: ANN202
    form = parse_upload_form(received.fields)
    require_form_version(form.version)
    if not principal.can_upload(form.name):
        raise forbidden(form.name)
    if received.file is None:
        raise bad_request(
            "missing-file", "No file", "The form has no 'content' file part with the distribution."
        )
    vf = verify_file(
        received.file,
        claimed_digests=form.digests,
        rules=rules,
    )
    check_form_matches(form, vf.metadata, vf.dist)
    raw_attestations = received.fields.get("attestations")
    if raw_attestations:
        vf.attestations = parse_attestations(raw_attestations[0], vf.filename, vf.spooled.digests)
        vf.publisher = attested_by(
            principal, vf.attestations, vf.filename, vf.spooled.digests.sha256, svc.settings
        )
    return publish_file(svc.engine, svc.store, vf, via="legacy", quota=svc.settings.project_quota)


routes = [
    Route("/legacy/", legacy_upload, methods=["POST"]),
    Route("/legacy", legacy_upload, methods=["POST"]),
    Route("/", legacy_upload, methods=["POST"]),
]
