"""The upload protocol against the metadata store, the object store and Temporal.

The router maps HTTP to these functions; decisions (part arithmetic, keys, the session body,
what differs) are the pure functions of `parts`, `session` and `verify`.

A side's multipart upload id is cleared once its file is assembled and verified: from then on the
object at its key is the recording, so a completion retried after a failure (Temporal down) does
not assemble or hash it again.

Completion is serialized: a request claims the session (status ``completing``, one conditional
UPDATE) before it assembles anything, so a client that retries while the first attempt is still
hashing multi-GB files gets a ``409`` with the problem type `COMPLETION_IN_PROGRESS` and a
``Retry-After`` instead of racing it. A claim whose request died is taken over after
`COMPLETION_LEASE`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import structlog
from fastapi import HTTPException
from fastapi.responses import JSONResponse
from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from activities.ingest.contracts import ExpectedRecording
from api.ingest.parts import (
    PartSizeError,
    choose_part_size,
    missing_parts,
    part_length,
    part_size_problems,
    parts_total,
)
from api.ingest.principal import SESSION_NOT_FOUND, Uploader, authorize
from api.ingest.schemas import SIDES, PartsRequest, PartUrl, PartUrls, Side, UploadOpen
from api.ingest.session import (
    declared,
    default_title,
    file_key,
    pair_problem,
    rig_key,
    rig_text,
    same_recording,
    sent_file,
    upload_prefix,
)
from api.ingest.verify import measure, verification_problems
from api.problems import problem
from api.security.tenancy import not_found
from polyvision.settings import Settings
from polyvision.storage.metadata.models import (
    Asset,
    AssetKind,
    Match,
    MatchStatus,
    Upload,
    UploadStatus,
    utcnow,
)
from polyvision.storage.objects import (
    ChecksumMismatch,
    FileObjectStore,
    InvalidPart,
    ObjectStore,
    PartInfo,
    UploadNotFound,
)
from polyvision.storage.objects.base import guess_content_type
from processing import MatchProcessing
from processing.catalog import match_workflow_id
from workflows.types import MatchInput

PART_URL_LIFETIME = timedelta(hours=1)
TEMPORAL_UNAVAILABLE = "The processing service is unavailable; try again shortly."
_OPEN = frozenset({UploadStatus.created, UploadStatus.uploading})
_ABORTABLE = _OPEN | {UploadStatus.failed}

# Problem types of the two 409s of a completion: the edge agent waits and retries on the first
# and uploads the named parts on the second, so they differ by URI, not by wording.
PROBLEM_TYPES = "https://polyvision.dev/problems/"
COMPLETION_IN_PROGRESS = f"{PROBLEM_TYPES}completion-in-progress"
MISSING_PARTS = f"{PROBLEM_TYPES}missing-parts"
COMPLETION_RETRY_AFTER_S = 5
# A claim older than this belongs to a request that died (API restart) and may be taken over.
# Generous: assembling and hashing two recordings of many GB on S3 takes minutes.
COMPLETION_LEASE = timedelta(minutes=30)
_ASSET_KINDS: dict[Side, AssetKind] = {
    "left": AssetKind.recording_left,
    "right": AssetKind.recording_right,
}

ConnectTemporal = Callable[[], Awaitable[Client]]

log = structlog.get_logger(__name__)


class UploadProblem(Exception):
    """A problem answer with its own `type` URI (an HTTPException always has `about:blank`).

    The router answers it with `response()`.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type_: str,
        title: str,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type_ = type_
        self.title = title
        self.headers = headers
        self.extensions = extensions

    def response(self) -> JSONResponse:
        """The problem+json response."""
        return problem(
            self.status,
            self.detail,
            title=self.title,
            type_=self.type_,
            headers=self.headers,
            **self.extensions,
        )


def completion_in_progress() -> UploadProblem:
    """The 409 of a completion asked while another request completes the session."""
    return UploadProblem(
        409,
        "completion in progress; retry shortly",
        type_=COMPLETION_IN_PROGRESS,
        title="Completion in progress",
        headers={"Retry-After": str(COMPLETION_RETRY_AFTER_S)},
    )


# ---- reading sessions ----------------------------------------------------------------------


def _key(upload: Upload, side: Side) -> str:
    key = upload.left_key if side == "left" else upload.right_key
    if key is None:
        raise RuntimeError(f"upload {upload.id} has no {side} key")
    return key


def _multipart_id(upload: Upload, side: Side) -> str | None:
    return upload.left_upload_id if side == "left" else upload.right_upload_id


def _set_multipart_id(upload: Upload, side: Side, value: str | None) -> None:
    if side == "left":
        upload.left_upload_id = value
    else:
        upload.right_upload_id = value


async def find_session(
    db: AsyncSession, upload_id: uuid.UUID, uploader: Uploader
) -> tuple[Upload, Match]:
    """The session and its match, if the uploader may act on it.

    Raises:
        HTTPException: 404 when missing or of another organization, 403 for a role too low.
    """
    upload = await db.get(Upload, upload_id)
    if upload is None:
        raise not_found(SESSION_NOT_FOUND)
    await authorize(uploader, upload.organization_id, db)
    match = await db.get(Match, upload.match_id)
    if match is None or match.organization_id != upload.organization_id:
        raise not_found(SESSION_NOT_FOUND)
    return upload, match


async def parts_done(objects: ObjectStore, upload: Upload) -> dict[Side, list[int]]:
    """Per side, the part numbers the object store holds (all of them once assembled)."""
    done: dict[Side, list[int]] = {}
    active = _OPEN | {UploadStatus.completing}
    for side in SIDES:
        every = list(range(1, parts_total(declared(upload, side).size, upload.part_size) + 1))
        multipart_id = _multipart_id(upload, side)
        if upload.status is UploadStatus.completed or (
            multipart_id is None and upload.status in active
        ):
            done[side] = every
        elif multipart_id is None or upload.status not in active:
            done[side] = []
        else:
            try:
                listed = await objects.list_parts(_key(upload, side), multipart_id)
            except UploadNotFound:
                # While completing, the multipart upload vanishes once it is assembled.
                done[side] = every if upload.status is UploadStatus.completing else []
                continue
            done[side] = [part.number for part in listed if part.number <= len(every)]
    return done


# ---- opening -------------------------------------------------------------------------------


async def _by_client_ref(
    db: AsyncSession, organization_id: uuid.UUID, client_ref: str
) -> Upload | None:
    return (
        await db.exec(
            select(Upload).where(
                col(Upload.organization_id) == organization_id,
                col(Upload.client_ref) == client_ref,
            )
        )
    ).first()


async def _reopened(db: AsyncSession, upload: Upload, body: UploadOpen) -> tuple[Upload, Match]:
    if not same_recording(upload, body):
        raise HTTPException(
            409,
            f"client_ref {body.client_ref!r} already names an upload session for a different "
            "recording pair (sizes, digests or frame counts differ).",
        )
    match = await db.get(Match, upload.match_id)
    if match is None:
        raise not_found(SESSION_NOT_FOUND)
    return upload, match


def part_size_limit(objects: ObjectStore, settings: Settings) -> int | None:
    """The largest part this deployment can receive, when smaller than S3's own limit.

    With the file backend every part PUT goes through the API, whose gateway refuses bodies
    over `settings.max_part_bytes`; S3 takes parts directly.
    """
    return settings.max_part_bytes if isinstance(objects, FileObjectStore) else None


async def open_session(
    db: AsyncSession,
    objects: ObjectStore,
    settings: Settings,
    organization_id: uuid.UUID,
    uploader: Uploader,
    body: UploadOpen,
) -> tuple[Upload, Match, bool]:
    """Create the match, the session, the rig and one multipart upload per file.

    A failed or aborted session with the same `client_ref` does not block the pair forever:
    its `client_ref` is released (the row stays, for the record) and a fresh session opens.

    Returns:
        The session, its match, and whether it was created (False: an existing session with
        the same `client_ref` was found).

    Raises:
        HTTPException: 422 for a mismatched pair, an invalid rig or part size; 409 when the
            `client_ref` names a different recording.
    """
    if (problem := pair_problem(body)) is not None:
        raise HTTPException(422, problem)
    try:
        rig = rig_text(body.rig)
    except ValueError as exc:
        raise HTTPException(422, f"The rig is not valid: {exc}") from exc
    try:
        part_size = choose_part_size(
            [body.left.size, body.right.size],
            body.part_size,
            limit=part_size_limit(objects, settings),
        )
    except PartSizeError as exc:
        raise HTTPException(422, str(exc)) from exc
    closed: Upload | None = None
    if (existing := await _by_client_ref(db, organization_id, body.client_ref)) is not None:
        if existing.status not in (UploadStatus.failed, UploadStatus.aborted):
            return (*await _reopened(db, existing, body), False)
        closed = existing

    upload_id = uuid.uuid4()
    keys = {
        side: file_key(organization_id, upload_id, side, sent_file(body, side).filename)
        for side in SIDES
    }
    match = Match(
        organization_id=organization_id,
        title=body.title or default_title(body.recorded_at, uploader.source_name),
        device_id=uploader.device.id if uploader.device is not None else None,
        status=MatchStatus.uploading,
        home_kit_colour=body.home_kit_colour,
        away_kit_colour=body.away_kit_colour,
        home_starts_left=body.home_starts_left,
    )
    upload = Upload(
        id=upload_id,
        organization_id=organization_id,
        match_id=match.id,
        device_id=uploader.device.id if uploader.device is not None else None,
        user_id=uploader.user.id if uploader.user is not None else None,
        recorded_at=body.recorded_at,
        client_ref=body.client_ref,
        part_size=part_size,
        left_size=body.left.size,
        left_sha256=body.left.sha256,
        left_frames=body.left.frames,
        right_size=body.right.size,
        right_sha256=body.right.sha256,
        right_frames=body.right.frames,
        left_key=keys["left"],
        right_key=keys["right"],
        rig_key=rig_key(organization_id, upload_id),
    )
    multipart: dict[Side, str] = {}
    try:
        await objects.put(rig_key(organization_id, upload_id), rig.encode(), sha256=None)
        for side in SIDES:
            # Parts arrive through presigned URLs that carry no per-part checksum; the whole
            # file's sha256 is verified on completion.
            multipart[side] = await objects.create_multipart(
                keys[side], sha256=sent_file(body, side).sha256, checksum_parts=False
            )
            _set_multipart_id(upload, side, multipart[side])
        if closed is not None:
            # In the transaction that creates the new session: if that fails, the closed one
            # keeps its client_ref.
            closed.client_ref = None
            await db.flush()
        db.add(match)
        await db.flush()
        db.add(upload)
        await db.commit()
    except Exception as exc:
        await db.rollback()
        for side, multipart_id in multipart.items():
            await objects.abort_multipart(keys[side], multipart_id)
        await objects.delete_prefix(upload_prefix(organization_id, upload_id))
        # Two opens with the same client_ref raced: the other one created the session.
        if isinstance(exc, IntegrityError):
            raced = await _by_client_ref(db, organization_id, body.client_ref)
            if raced is not None:
                return (*await _reopened(db, raced, body), False)
        raise
    return upload, match, True


# ---- parts ---------------------------------------------------------------------------------


def _require_open(upload: Upload) -> None:
    if upload.status not in _OPEN:
        raise HTTPException(409, f"The upload session is {upload.status.value}.")


async def part_urls(
    db: AsyncSession, objects: ObjectStore, upload: Upload, request: PartsRequest
) -> PartUrls:
    """Presigned PUT URLs for the requested parts of one file.

    Raises:
        HTTPException: 409 when the session is closed or the file already assembled, 422 for
            part numbers outside 1..parts_total.
        UploadProblem: 409 `COMPLETION_IN_PROGRESS` while a completion holds the session.
    """
    if upload.status is UploadStatus.completing:
        raise completion_in_progress()
    _require_open(upload)
    side: Side = request.file
    multipart_id = _multipart_id(upload, side)
    if multipart_id is None:
        raise HTTPException(409, f"The {side} file is already assembled and verified.")
    total = parts_total(declared(upload, side).size, upload.part_size)
    if outside := sorted({n for n in request.numbers if not 1 <= n <= total}):
        raise HTTPException(
            422, f"{side}: part numbers outside 1..{total}: {', '.join(map(str, outside))}"
        )
    expires_at = datetime.now(UTC) + PART_URL_LIFETIME
    lifetime = int(PART_URL_LIFETIME.total_seconds())
    urls = [
        PartUrl(
            number=number,
            url=await objects.presign_part(
                _key(upload, side), multipart_id, number, expires_in=lifetime
            ),
            headers={},
            expires_at=expires_at,
        )
        for number in dict.fromkeys(request.numbers)
    ]
    if upload.status is UploadStatus.created:
        upload.status = UploadStatus.uploading
        await db.commit()
    return PartUrls(urls=urls)


async def expected_part_length(
    db: AsyncSession, key: str, multipart_id: str, number: int
) -> int | None:
    """The length part `number` must have when the multipart upload `multipart_id` at `key` is
    one file of an upload session; None when no session owns that upload.

    The part PUT of the file backend checks it before storing anything (S3 takes parts
    directly; there the completion's check of the part sizes is the only one). A number past
    the file's last part gets 0 or less: no byte of it is wanted.
    """
    prefix, _, _ = key.rpartition("/")
    try:
        upload_id = uuid.UUID(prefix.rpartition("/")[2])
    except ValueError:
        return None
    upload = await db.get(Upload, upload_id)
    if upload is None:
        return None
    for side in SIDES:
        if _multipart_id(upload, side) == multipart_id and _key(upload, side) == key:
            return part_length(number, declared(upload, side).size, upload.part_size)
    return None


# ---- completion ----------------------------------------------------------------------------


async def _fail(
    db: AsyncSession, objects: ObjectStore, upload: Upload, match: Match, problems: list[str]
) -> NoReturn:
    """Close the session as failed: free the parts, delete everything the session stored (the
    files assembled so far and the rig: a failed session is never completed, and a new one
    for the pair writes its own), answer 422."""
    message = "; ".join(problems)
    for side in SIDES:
        if (multipart_id := _multipart_id(upload, side)) is not None:
            await objects.abort_multipart(_key(upload, side), multipart_id)
    await objects.delete_prefix(upload_prefix(upload.organization_id, upload.id))
    upload.status = UploadStatus.failed
    upload.error = message[:2000]
    match.status = MatchStatus.failed
    await db.commit()
    raise HTTPException(422, message)


def _missing_detail(missing: dict[Side, list[int]]) -> str:
    listed = "; ".join(
        f"{side} {', '.join(map(str, numbers))}" for side, numbers in missing.items() if numbers
    )
    return f"Missing parts: {listed}. Upload them and complete again."


async def _assemble(db: AsyncSession, objects: ObjectStore, upload: Upload, match: Match) -> None:
    """Check the parts of both files, assemble them and verify size and sha256 of each."""
    listed: dict[Side, list[PartInfo]] = {}
    unverified: list[Side] = []
    for side in SIDES:
        if (multipart_id := _multipart_id(upload, side)) is None:
            continue  # assembled and verified by an earlier attempt
        try:
            listed[side] = await objects.list_parts(_key(upload, side), multipart_id)
        except UploadNotFound as exc:
            # Assembled by an attempt that stopped before recording it: verify that object.
            if await objects.exists(_key(upload, side)):
                unverified.append(side)
                continue
            raise HTTPException(
                409, f"The {side} upload is no longer open; fetch the session."
            ) from exc

    missing: dict[Side, list[int]] = {}
    problems: list[str] = []
    for side, parts in listed.items():
        size = declared(upload, side).size
        missing[side] = missing_parts(parts, size, upload.part_size)
        problems += [f"{side}: {p}" for p in part_size_problems(parts, size, upload.part_size)]
    if any(missing.values()):
        raise UploadProblem(
            409,
            _missing_detail(missing),
            type_=MISSING_PARTS,
            title="Missing parts",
            missing={side: numbers for side, numbers in missing.items() if numbers},
        )
    if problems:
        await _fail(db, objects, upload, match, problems)

    for side, parts in listed.items():
        multipart_id = _multipart_id(upload, side)
        assert multipart_id is not None
        try:
            await objects.complete_multipart(_key(upload, side), multipart_id, parts)
        except ChecksumMismatch:
            declared_sha256 = declared(upload, side).sha256
            await _fail(
                db,
                objects,
                upload,
                match,
                [f"{side}: sha256 differs from the declared {declared_sha256}"],
            )
        except InvalidPart as exc:
            await _fail(db, objects, upload, match, [f"{side}: {exc}"])
        except UploadNotFound as exc:
            # Only after a takeover of a stale claim: its first holder assembled the file
            # after all. Verify that object like any other.
            if not await objects.exists(_key(upload, side)):
                raise HTTPException(
                    409, f"The {side} upload is no longer open; fetch the session."
                ) from exc
        unverified.append(side)

    for side in unverified:
        expected = declared(upload, side)
        found = verification_problems(
            side, expected.size, expected.sha256, await measure(objects, _key(upload, side))
        )
        if found:
            await _fail(db, objects, upload, match, found)
        _set_multipart_id(upload, side, None)
        await db.commit()


def match_input(upload: Upload, match: Match, revision: int) -> MatchInput:
    """The match workflow's input for ``revision`` of a completed ``upload``.

    Used by a completed upload (revision 1) and by the reprocess of a finished match (the
    next revision, a new run under the same workflow id); `processing.MatchProcessing.start`
    starts it. The match's side settings as they are now go with it to the track stage.
    """

    def expected(side: Side) -> ExpectedRecording:
        stored = declared(upload, side)
        return ExpectedRecording(
            size_bytes=stored.size, sha256=stored.sha256, frame_count=stored.frames
        )

    return MatchInput(
        organization_id=str(match.organization_id),
        match_id=str(match.id),
        left_key=_key(upload, "left"),
        right_key=_key(upload, "right"),
        rig_key=upload.rig_key or rig_key(upload.organization_id, upload.id),
        device_id=str(upload.device_id) if upload.device_id is not None else None,
        revision=revision,
        expected_left=expected("left"),
        expected_right=expected("right"),
        home_kit_colour=match.home_kit_colour,
        away_kit_colour=match.away_kit_colour,
        home_starts_left=match.home_starts_left,
        teams_swapped=match.teams_swapped,
    )


async def latest_completed_upload(db: AsyncSession, match: Match) -> Upload | None:
    """The match's most recently completed upload session: the recording it is processed from."""
    return (
        await db.exec(
            select(Upload)
            .where(
                col(Upload.match_id) == match.id,
                col(Upload.organization_id) == match.organization_id,
                col(Upload.status) == UploadStatus.completed,
            )
            .order_by(col(Upload.completed_at).desc())
        )
    ).first()


async def _completed_run(
    settings: Settings, connect: ConnectTemporal, match: Match
) -> tuple[str | None, str | None]:
    """Run id and UI link of the workflow a completed session started."""
    workflow_id = match_workflow_id(match)
    processing = MatchProcessing(await connect(), settings)
    try:
        run_id = await processing.current_run_id(workflow_id)
    except RPCError as exc:
        raise HTTPException(503, TEMPORAL_UNAVAILABLE) from exc
    return run_id, processing.ui_link(workflow_id, run_id) if run_id else None


async def _claim(db: AsyncSession, upload: Upload) -> tuple[bool, UploadStatus]:
    """Compare-and-set the session to `completing`; whether this request won it, and the
    session's status now.

    One conditional UPDATE: of concurrent completions the database lets exactly one match the
    row. A claim older than `COMPLETION_LEASE` is taken over. `completed_at` holds the claim's
    time while the session is `completing` (the completion time afterwards). `upload` is
    refreshed either way.
    """
    # End the transaction the lookups ran in, so SQLite takes the write lock at the UPDATE
    # instead of failing on a stale read snapshot.
    await db.commit()
    now = utcnow()
    claimed = await db.exec(
        update(Upload)
        .where(
            col(Upload.id) == upload.id,
            or_(
                col(Upload.status).in_(list(_OPEN)),
                and_(
                    col(Upload.status) == UploadStatus.completing,
                    or_(
                        col(Upload.completed_at).is_(None),
                        col(Upload.completed_at) < now - COMPLETION_LEASE,
                    ),
                ),
            ),
        )
        .values(status=UploadStatus.completing, completed_at=now)
        .execution_options(synchronize_session=False)
    )
    won = claimed.rowcount == 1
    await db.commit()
    await db.refresh(upload)
    return won, upload.status


async def _release(db: AsyncSession, upload: Upload, match: Match) -> None:
    """Give a claimed session back (`uploading`) after an unexpected error, so a retried
    completion can proceed; a session failed or completed meanwhile is left alone."""
    upload_id = upload.id  # read before the rollback expires the instance
    try:
        await db.rollback()
        await db.exec(
            update(Upload)
            .where(col(Upload.id) == upload_id, col(Upload.status) == UploadStatus.completing)
            .values(status=UploadStatus.uploading, completed_at=None)
            .execution_options(synchronize_session=False)
        )
        await db.commit()
        await db.refresh(upload)
        await db.refresh(match)
    except Exception:
        # The original error is the one to answer; the claim expires after its lease.
        log.exception("could not release a completion claim", upload_id=str(upload_id))


async def complete(
    db: AsyncSession,
    objects: ObjectStore,
    settings: Settings,
    connect: ConnectTemporal,
    upload: Upload,
    match: Match,
) -> tuple[str | None, str | None]:
    """Claim the session, assemble, verify, start the match workflow and close the session.

    Returns:
        The workflow's run id and its Temporal UI link.

    Raises:
        UploadProblem: 409 `COMPLETION_IN_PROGRESS` while another request completes the
            session; 409 `MISSING_PARTS` naming the parts not uploaded yet.
        HTTPException: 409 for a closed session, 422 when a file differs from its declaration
            (the session is then failed), 503 when Temporal is down (the session stays
            completable).
    """
    if upload.status is UploadStatus.completed:
        return await _completed_run(settings, connect, match)
    held = upload.status is UploadStatus.completing
    if not held:
        _require_open(upload)
    won, status = await _claim(db, upload)
    if won and held:
        log.warning("took over a stale completion claim", upload_id=str(upload.id))
    if not won:
        if status is UploadStatus.completed:  # the request that held it finished meanwhile
            await db.refresh(match)
            return await _completed_run(settings, connect, match)
        if status in (UploadStatus.failed, UploadStatus.aborted):
            _require_open(upload)
        raise completion_in_progress()
    try:
        return await _complete_claimed(db, objects, settings, connect, upload, match)
    except BaseException:
        await _release(db, upload, match)
        raise


async def _complete_claimed(
    db: AsyncSession,
    objects: ObjectStore,
    settings: Settings,
    connect: ConnectTemporal,
    upload: Upload,
    match: Match,
) -> tuple[str | None, str | None]:
    """`complete` once this request holds the claim."""
    workflow_id = MatchProcessing.workflow_id(str(match.id))
    await _assemble(db, objects, upload, match)

    processing = MatchProcessing(await connect(), settings)
    try:
        # A retried completion finds the workflow the first one started.
        run_id = await processing.start(match_input(upload, match, max(match.revision, 1)))
    except RPCError as exc:
        raise HTTPException(503, TEMPORAL_UNAVAILABLE) from exc

    for side in SIDES:
        stored = declared(upload, side)
        db.add(
            Asset(
                organization_id=upload.organization_id,
                match_id=match.id,
                kind=_ASSET_KINDS[side],
                object_key=_key(upload, side),
                size_bytes=stored.size,
                sha256=stored.sha256,
                content_type=guess_content_type(_key(upload, side), None),
            )
        )
    match.status = MatchStatus.processing
    match.revision = max(match.revision, 1)
    match.workflow_id = workflow_id
    upload.status = UploadStatus.completed
    upload.completed_at = datetime.now(UTC)
    upload.error = None
    try:
        await db.commit()
    except IntegrityError:
        # The recordings' assets exist: a completion that took over a stale claim of ours
        # finished first. The session is completed; answer as for a retried completion.
        await db.rollback()
        await db.refresh(upload)
        await db.refresh(match)
        if upload.status is not UploadStatus.completed:
            raise
        return await _completed_run(settings, connect, match)
    return run_id, processing.ui_link(workflow_id, run_id)


# ---- abort ---------------------------------------------------------------------------------


async def abort(db: AsyncSession, objects: ObjectStore, upload: Upload, match: Match) -> None:
    """Abort the multipart uploads, delete the session's objects, mark it aborted.

    The status changes first, by compare-and-set, so an abort never deletes the parts a
    completion is assembling.

    Raises:
        HTTPException: 409 for a completed session (its match is processing: cancel that).
        UploadProblem: 409 `COMPLETION_IN_PROGRESS` while a completion holds the session.
    """
    if upload.status in _ABORTABLE:
        await db.commit()  # as in `_claim`: the UPDATE starts the write transaction
        aborted = await db.exec(
            update(Upload)
            .where(col(Upload.id) == upload.id, col(Upload.status).in_(list(_ABORTABLE)))
            .values(status=UploadStatus.aborted)
            .execution_options(synchronize_session=False)
        )
        won = aborted.rowcount == 1
        await db.commit()
        await db.refresh(upload)
        if won:
            for side in SIDES:
                if (multipart_id := _multipart_id(upload, side)) is not None:
                    await objects.abort_multipart(_key(upload, side), multipart_id)
            await objects.delete_prefix(upload_prefix(upload.organization_id, upload.id))
            if match.status is MatchStatus.uploading:
                match.status = MatchStatus.cancelled
                await db.commit()
            return
    if upload.status is UploadStatus.completing:
        # Deleting the parts now would break the completion that is assembling them.
        raise completion_in_progress()
    if upload.status is UploadStatus.completed:
        raise HTTPException(
            409, "The upload session is completed; cancel the match's processing instead."
        )
