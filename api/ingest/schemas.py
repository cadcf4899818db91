"""Request and response bodies of the upload protocol (the contract with the edge agent)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from api.catalog.sides import KitSettings
from api.json_fields import TextDatetime

Side = Literal["left", "right"]
SessionStatus = Literal["created", "uploading", "completed", "failed", "aborted"]
"""A session's status as the protocol shows it: a session being completed shows `uploading`
(its completion answers 409 `completion-in-progress` until done)."""
SIDES: tuple[Side, Side] = ("left", "right")
MAX_URLS_PER_CALL = 100

_SHA_EXAMPLE = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
_SHA_EXAMPLE_2 = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"


class FileDeclaration(BaseModel):
    """What the uploader declares about one camera's recording before sending it."""

    filename: str = Field(min_length=1, max_length=255, description="Original file name.")
    size: StrictInt = Field(gt=0, description="Size in bytes.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Lowercase hex sha256.")
    frames: StrictInt = Field(gt=0, description="Number of video frames.")


class UploadOpen(KitSettings):
    """Open (or re-open, by `client_ref`) an upload session for one recording pair.

    The optional kit colours and starting side go to the match the session creates (which of
    the tracker's two kits is home); a re-opened session keeps its match's settings.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "client_ref": "spool-000142",
                    "recorded_at": "2025-05-17T15:00:00+02:00",
                    "title": None,
                    "left": {
                        "filename": "left.mp4",
                        "size": 1_073_741_824,
                        "sha256": _SHA_EXAMPLE,
                        "frames": 162_000,
                    },
                    "right": {
                        "filename": "right.mp4",
                        "size": 1_073_741_000,
                        "sha256": _SHA_EXAMPLE_2,
                        "frames": 162_000,
                    },
                    "rig": {
                        "version": 1,
                        "frame": "pitch",
                        "pitch_length_m": 105.0,
                        "pitch_width_m": 68.0,
                        "cameras": {"left": {"...": "..."}, "right": {"...": "..."}},
                    },
                    "part_size": None,
                    "home_kit_colour": "#c8102e",
                    "away_kit_colour": None,
                    "home_starts_left": None,
                }
            ]
        }
    )

    client_ref: str = Field(
        min_length=1, max_length=200, description="The uploader's own id for this pair."
    )
    recorded_at: TextDatetime
    title: str | None = Field(default=None, min_length=1, max_length=300)
    left: FileDeclaration
    right: FileDeclaration
    rig: dict[str, Any] = Field(description="The rig.json document.")
    part_size: StrictInt | None = Field(
        default=None, gt=0, description="Bytes per part; 8 MiB default."
    )


class FileProgress(BaseModel):
    """One file of a session: what was declared and which parts the store holds."""

    size: int
    sha256: str
    frames: int
    parts_total: int
    parts_done: list[int]


class SessionFiles(BaseModel):
    left: FileProgress
    right: FileProgress


class Verified(BaseModel):
    """The sha256 digests the server computed over the assembled files."""

    left: str
    right: str


class UploadSession(BaseModel):
    """An upload session; a client resumes by uploading the parts not in `parts_done`."""

    id: uuid.UUID
    match_id: uuid.UUID
    status: SessionStatus
    part_size: int
    files: SessionFiles
    error: str | None
    workflow_id: str | None
    run_id: str | None
    ui_url: str | None
    verified: Verified | None


class PartsRequest(BaseModel):
    """Ask for upload URLs of some parts of one file."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"file": "left", "numbers": [1, 2]}]})

    file: Side
    numbers: list[StrictInt] = Field(min_length=1, max_length=MAX_URLS_PER_CALL)


class PartUrl(BaseModel):
    """PUT exactly the bytes of part `number` to `url`, with `headers`, before `expires_at`."""

    number: int
    url: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str]
    expires_at: datetime


class PartUrls(BaseModel):
    urls: list[PartUrl]
