"""Pure pieces of an upload session: object keys, titles, declarations and the session body."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any

from api.ingest.parts import parts_total
from api.ingest.schemas import (
    SIDES,
    FileDeclaration,
    FileProgress,
    SessionFiles,
    SessionStatus,
    Side,
    UploadOpen,
    UploadSession,
    Verified,
)
from polyvision.geometry import Rig, RigError
from polyvision.storage.metadata.models import Match, Upload, UploadStatus

_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}")
# `completing` is the server's lock, not a state of the protocol: deployed edge agents know
# only the five protocol statuses, and for them the session is still open.
_PUBLIC_STATUS: dict[UploadStatus, SessionStatus] = {
    UploadStatus.created: "created",
    UploadStatus.uploading: "uploading",
    UploadStatus.completing: "uploading",
    UploadStatus.completed: "completed",
    UploadStatus.failed: "failed",
    UploadStatus.aborted: "aborted",
}


def upload_prefix(organization_id: uuid.UUID, upload_id: uuid.UUID) -> str:
    """Where a session's files live: `orgs/{org}/uploads/{upload_id}/`."""
    return f"orgs/{organization_id}/uploads/{upload_id}/"


def file_key(organization_id: uuid.UUID, upload_id: uuid.UUID, side: Side, filename: str) -> str:
    """`…/left.mp4`: the side's name with the original file's extension (lower-cased).

    An extension that is not short and alphanumeric is dropped rather than put in a key.
    """
    _, dot, extension = filename.rpartition(".")
    suffix = f".{extension}".lower() if dot and _EXTENSION.fullmatch(f".{extension}") else ""
    return f"{upload_prefix(organization_id, upload_id)}{side}{suffix}"


def rig_key(organization_id: uuid.UUID, upload_id: uuid.UUID) -> str:
    """`…/rig.json` of a session."""
    return f"{upload_prefix(organization_id, upload_id)}rig.json"


def rig_text(document: dict[str, Any]) -> str:
    """The rig document as the text of `rig.json`, after validating it as the pipeline will.

    Raises:
        ValueError: the rig does not validate; the message names the problem.
    """
    text = json.dumps(document, indent=2)
    try:
        Rig.from_json(text)
    except (RigError, TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from exc
    return text


def default_title(recorded_at: datetime, source: str | None) -> str:
    """`Recording 2025-05-17 15:00 — edge-box`: the time as the uploader's clock gave it."""
    title = f"Recording {recorded_at:%Y-%m-%d %H:%M}"
    return f"{title} — {source}" if source else title


def pair_problem(body: UploadOpen) -> str | None:
    """Why the two declared recordings cannot be one pair, or None."""
    if body.left.frames != body.right.frames:
        return f"mismatched pair: left has {body.left.frames} frames, right has {body.right.frames}"
    return None


def declared(upload: Upload, side: Side) -> FileDeclaration:
    """The declaration of one side as stored on the session (the filename is not stored)."""
    if side == "left":
        size, sha256, frames, key = (
            upload.left_size,
            upload.left_sha256,
            upload.left_frames,
            upload.left_key,
        )
    else:
        size, sha256, frames, key = (
            upload.right_size,
            upload.right_sha256,
            upload.right_frames,
            upload.right_key,
        )
    return FileDeclaration(
        filename=(key or side).rpartition("/")[2], size=size, sha256=sha256, frames=frames
    )


def sent_file(body: UploadOpen, side: Side) -> FileDeclaration:
    """One side of an open request."""
    return body.left if side == "left" else body.right


def same_recording(upload: Upload, body: UploadOpen) -> bool:
    """Whether a re-sent open describes the recording pair the session was opened for."""
    for side in SIDES:
        stored, sent = declared(upload, side), sent_file(body, side)
        if (stored.size, stored.sha256, stored.frames) != (sent.size, sent.sha256, sent.frames):
            return False
    return True


def build_session(
    upload: Upload,
    match: Match,
    parts_done: dict[Side, list[int]],
    *,
    run_id: str | None = None,
    ui_url: str | None = None,
) -> UploadSession:
    """The UploadSession body of the protocol."""

    def progress(side: Side) -> FileProgress:
        stored = declared(upload, side)
        return FileProgress(
            size=stored.size,
            sha256=stored.sha256,
            frames=stored.frames,
            parts_total=parts_total(stored.size, upload.part_size),
            parts_done=parts_done[side],
        )

    completed = upload.status is UploadStatus.completed
    return UploadSession(
        id=upload.id,
        match_id=upload.match_id,
        status=_PUBLIC_STATUS[upload.status],
        part_size=upload.part_size,
        files=SessionFiles(left=progress("left"), right=progress("right")),
        error=upload.error,
        workflow_id=match.workflow_id if completed else None,
        run_id=run_id if completed else None,
        ui_url=ui_url if completed else None,
        # Completion verified both digests equal the declared ones before it succeeded.
        verified=Verified(left=upload.left_sha256, right=upload.right_sha256)
        if completed
        else None,
    )
