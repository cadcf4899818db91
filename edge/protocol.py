"""The edge agent's view of the API's upload and device contract (pydantic models).

The agent does not import ``api``: these models mirror the documented JSON bodies and ignore
fields they do not know, so the API can add fields without breaking deployed agents.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FileSide = Literal["left", "right"]
SIDES: tuple[FileSide, FileSide] = ("left", "right")
MAX_PARTS_PER_REQUEST = 100
"""The API hands out at most this many part URLs per call."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Registered(_Lenient):
    """Answer of ``POST /devices/register``."""

    device_id: uuid.UUID
    organization_id: uuid.UUID
    name: str


class DeviceInfo(_Lenient):
    """Answer of ``GET /devices/me``."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    status: str


class FileSpec(BaseModel):
    """One recording of the pair as the agent announces it."""

    filename: str
    size: int = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    frames: int = Field(gt=0)


class OpenUpload(BaseModel):
    """Body of ``POST /uploads``."""

    client_ref: str = Field(min_length=1, max_length=200)
    recorded_at: datetime
    title: str | None = None
    left: FileSpec
    right: FileSpec
    rig: dict[str, Any]
    part_size: int | None = None


class SessionFile(_Lenient):
    """One file of an upload session as the server sees it."""

    size: int
    sha256: str
    frames: int
    parts_total: int
    parts_done: list[int] = Field(default_factory=list)


class UploadSession(_Lenient):
    """An upload session (``POST /uploads``, ``GET /uploads/{id}``, ``.../complete``)."""

    id: uuid.UUID
    match_id: uuid.UUID
    status: Literal["created", "uploading", "completed", "failed", "aborted"]
    part_size: int
    files: dict[FileSide, SessionFile]
    error: str | None = None
    workflow_id: str | None = None
    run_id: str | None = None
    ui_url: str | None = None
    verified: dict[FileSide, str] | None = None


class PartUrl(_Lenient):
    """Where and how to send one part."""

    number: int
    url: str
    method: str = "PUT"
    headers: dict[str, str] = Field(default_factory=dict)
    expires_at: datetime


class PartUrls(_Lenient):
    """Answer of ``POST /uploads/{id}/parts``."""

    urls: list[PartUrl]


def parts_total(size: int, part_size: int) -> int:
    """How many parts a file of ``size`` bytes has (the last one may be shorter)."""
    if size <= 0 or part_size <= 0:
        raise ValueError("size and part_size must be positive")
    return math.ceil(size / part_size)


def part_range(number: int, part_size: int, size: int) -> tuple[int, int]:
    """``(offset, length)`` of part ``number`` (1-based) of a file of ``size`` bytes.

    Raises:
        ValueError: ``number`` is outside ``1..parts_total``.
    """
    total = parts_total(size, part_size)
    if not 1 <= number <= total:
        raise ValueError(f"part {number} is outside 1..{total}")
    offset = (number - 1) * part_size
    return offset, min(part_size, size - offset)


def missing_parts(total: int, done: list[int] | set[int]) -> list[int]:
    """Part numbers in ``1..total`` not in ``done``, ascending."""
    have = set(done)
    return [number for number in range(1, total + 1) if number not in have]


def batches(numbers: list[int], size: int = MAX_PARTS_PER_REQUEST) -> list[list[int]]:
    """``numbers`` cut into consecutive lists of at most ``size``."""
    if size <= 0:
        raise ValueError("batch size must be positive")
    return [numbers[start : start + size] for start in range(0, len(numbers), size)]
