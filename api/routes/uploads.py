"""Uploads: the edge agent's upload protocol for a recording pair.

An edge box (device token) opens a session at `POST /uploads`; a member with the `upload`
permission may open one at `POST /orgs/{org_id}/uploads`. Either then asks for presigned part
URLs, PUTs the parts straight to the object store, and completes the session: the server
assembles both files, verifies their sizes and sha256 digests, and starts the match workflow.
A session of another organization answers 404.

The two 409s of a completion differ by problem `type`: `.../completion-in-progress` (another
request is completing the session: wait `Retry-After` seconds and complete again) and
`.../missing-parts` (upload the parts named in `missing`, then complete again).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from temporalio.client import Client

from api.deps import DbSession, ObjectsDep, SettingsDep, get_temporal
from api.ingest import service
from api.ingest.principal import CurrentUploader, Uploader
from api.ingest.schemas import PartsRequest, PartUrls, UploadOpen, UploadSession
from api.ingest.session import build_session
from api.openapi import problem_responses
from api.security.tenancy import CanUpload
from polyvision.settings import Settings
from polyvision.storage.metadata.models import Match, Upload, UploadStatus
from polyvision.storage.objects import ObjectStore
from processing import MatchProcessing

router = APIRouter(tags=["uploads"])

_EXISTING: dict[str, Any] = {
    "description": "The existing session opened earlier with the same client_ref",
    "model": UploadSession,
}


async def _session_body(
    request: Request, objects: ObjectStore, upload: Upload, match: Match
) -> UploadSession:
    """The session as GET shows it; the run id of a completed one is looked up if Temporal is
    reachable right now (the session is served either way)."""
    run_id: str | None = None
    ui_url: str | None = None
    client: Client | None = request.app.state.temporal
    if upload.status is UploadStatus.completed and client is not None and match.workflow_id:
        processing = MatchProcessing(client, request.app.state.settings)
        try:
            run_id = await processing.current_run_id(match.workflow_id)
        except Exception:  # Temporal down: the session is still worth answering
            run_id = None
        if run_id is not None:
            ui_url = processing.ui_link(match.workflow_id, run_id)
    return build_session(
        upload, match, await service.parts_done(objects, upload), run_id=run_id, ui_url=ui_url
    )


async def _open(
    response: Response,
    db: DbSession,
    objects: ObjectStore,
    settings: Settings,
    organization_id: uuid.UUID,
    uploader: Uploader,
    body: UploadOpen,
) -> UploadSession:
    upload, match, created = await service.open_session(
        db, objects, settings, organization_id, uploader, body
    )
    if not created:
        response.status_code = 200
    return build_session(upload, match, await service.parts_done(objects, upload))


@router.post(
    "/uploads",
    status_code=201,
    summary="Open an upload session (device)",
    responses={**problem_responses(401, 403, 409, 422), 200: _EXISTING},
)
async def open_device_upload(
    body: UploadOpen,
    response: Response,
    uploader: CurrentUploader,
    db: DbSession,
    objects: ObjectsDep,
    settings: SettingsDep,
) -> UploadSession:
    """Open a session for one recording pair, or find the one with the same `client_ref`.

    A failed or aborted session with that `client_ref` does not count: a fresh one opens.
    """
    if uploader.device is None:
        raise HTTPException(403, "Users open upload sessions at /orgs/{org_id}/uploads.")
    return await _open(
        response, db, objects, settings, uploader.device.organization_id, uploader, body
    )


@router.post(
    "/orgs/{org_id}/uploads",
    status_code=201,
    summary="Open an upload session (member)",
    responses={**problem_responses(401, 403, 404, 409, 422), 200: _EXISTING},
)
async def open_member_upload(
    body: UploadOpen,
    response: Response,
    access: CanUpload,
    db: DbSession,
    objects: ObjectsDep,
    settings: SettingsDep,
) -> UploadSession:
    """Same as `POST /uploads`, for a member with the `upload` permission."""
    uploader = Uploader(user=access.user)
    return await _open(response, db, objects, settings, access.organization_id, uploader, body)


@router.get(
    "/uploads/{upload_id}",
    summary="Get an upload session",
    responses=problem_responses(401, 403, 404),
)
async def get_upload(
    upload_id: uuid.UUID,
    request: Request,
    uploader: CurrentUploader,
    db: DbSession,
    objects: ObjectsDep,
) -> UploadSession:
    """The session, with the parts the object store holds: upload only the others to resume."""
    upload, match = await service.find_session(db, upload_id, uploader)
    return await _session_body(request, objects, upload, match)


@router.post(
    "/uploads/{upload_id}/parts",
    summary="Get presigned URLs for parts",
    response_model=PartUrls,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def get_part_urls(
    upload_id: uuid.UUID,
    body: PartsRequest,
    uploader: CurrentUploader,
    db: DbSession,
    objects: ObjectsDep,
) -> PartUrls | JSONResponse:
    """One PUT URL per requested part of one file (at most 100 per call)."""
    upload, _ = await service.find_session(db, upload_id, uploader)
    try:
        return await service.part_urls(db, objects, upload, body)
    except service.UploadProblem as exc:
        return exc.response()


@router.post(
    "/uploads/{upload_id}/complete",
    summary="Complete an upload session",
    response_model=UploadSession,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def complete_upload(
    upload_id: uuid.UUID,
    request: Request,
    uploader: CurrentUploader,
    db: DbSession,
    objects: ObjectsDep,
    settings: SettingsDep,
) -> UploadSession | JSONResponse:
    """Assemble and verify both files, then start the match workflow; idempotent.

    One request at a time completes a session; a concurrent one answers 409
    `completion-in-progress` with `Retry-After`.
    """
    upload, match = await service.find_session(db, upload_id, uploader)
    try:
        run_id, ui_url = await service.complete(
            db, objects, settings, lambda: get_temporal(request), upload, match
        )
    except service.UploadProblem as exc:
        return exc.response()
    return build_session(
        upload, match, await service.parts_done(objects, upload), run_id=run_id, ui_url=ui_url
    )


@router.delete(
    "/uploads/{upload_id}",
    status_code=204,
    summary="Abort an upload session",
    responses=problem_responses(401, 403, 404, 409),
)
async def abort_upload(
    upload_id: uuid.UUID, uploader: CurrentUploader, db: DbSession, objects: ObjectsDep
) -> Response:
    """Abort the multipart uploads and delete what was uploaded."""
    upload, match = await service.find_session(db, upload_id, uploader)
    try:
        await service.abort(db, objects, upload, match)
    except service.UploadProblem as exc:
        return exc.response()
    return Response(status_code=204)
