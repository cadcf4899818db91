"""The index stage as a Temporal activity: the match summary and the catalog's "ready" mark.

Thin on purpose: it writes ``summary.json`` (the figures every stage reported, and the keys of
what the viewers fetch) and, when the catalog has the match under the same organization, marks
it ready with its duration and revision. A row of another organization is never touched, and a
row that already shows a newer revision is left alone (an older run finishing late must not
overwrite a reprocess). The manifest is written last.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from polyvision.artifacts import (
    Manifest,
    artifact_key,
    inputs_digest,
    read_matching_manifest,
    write_manifest,
)
from polyvision.storage.metadata.models import Match, MatchStatus
from polyvision.storage.objects import ObjectStore

CODE_VERSION = "index-1"
"""Bump when the same inputs would give another summary."""

SUMMARY_VERSION = 1


@dataclass
class IndexInput:
    """What the match's stages produced, to be summarised and published.

    Attributes:
        organization_id: Tenant of the match.
        match_id: The match (the catalog's ``matches.id``).
        revision: Processing revision.
        frames: Frames in the match.
        fps: Frame rate.
        chunks: Number of chunks.
        detections_persons: Person detections over the match.
        detections_balls: Ball detections over the match.
        tracks: Distinct tracks.
        total_distance_m: Distance covered by all tracks together, metres.
        hls_master_key: Object key of the HLS master playlist.
        heatmaps_key: Object key of ``heatmaps.json``.
    """

    organization_id: str
    match_id: str
    revision: int
    frames: int
    fps: float
    chunks: int
    detections_persons: int
    detections_balls: int
    tracks: int
    total_distance_m: float
    hls_master_key: str
    heatmaps_key: str


@dataclass
class IndexOutput:
    """Where the summary is, and whether the catalog row was updated.

    Attributes:
        summary_key: Object key of ``summary.json``.
        catalog_updated: True when a catalog row of this organization was marked ready.
    """

    summary_key: str
    catalog_updated: bool


def summary_document(input: IndexInput, summary_key: str) -> dict[str, object]:
    """The ``summary.json`` body: every input figure, the duration and the artifact keys.

    No timestamp: the same inputs give the same bytes, whichever attempt writes them.
    """
    body: dict[str, object] = {"version": SUMMARY_VERSION, **asdict(input)}
    body["duration_s"] = duration_s(input)
    body["keys"] = {
        "summary": summary_key,
        "hls_master": input.hls_master_key,
        "heatmaps": input.heatmaps_key,
    }
    return body


def duration_s(input: IndexInput) -> float:
    """The match's duration in seconds (0 for an unknown frame rate)."""
    return input.frames / input.fps if input.fps > 0 else 0.0


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class IndexActivities:
    """The index activity, bound to the worker's object store and metadata sessions.

    Args:
        objects: Object store receiving ``summary.json`` and the manifest.
        sessions: Metadata session factory; None where the worker has no catalog (the summary
            is still written).
    """

    def __init__(
        self, objects: ObjectStore, sessions: async_sessionmaker[AsyncSession] | None
    ) -> None:
        self._objects = objects
        self._sessions = sessions

    async def _mark_ready(self, input: IndexInput, duration_s: float) -> bool:
        match_id, organization_id = _uuid(input.match_id), _uuid(input.organization_id)
        if self._sessions is None or match_id is None or organization_id is None:
            return False
        # One conditional UPDATE: the tenant and revision checks and the write are atomic,
        # so there is no window between reading the row and changing it.
        statement = (
            update(Match)
            .where(
                Match.id == match_id,  # type: ignore[arg-type]
                Match.organization_id == organization_id,  # type: ignore[arg-type]
                Match.revision <= input.revision,  # type: ignore[arg-type]
            )
            .values(
                status=MatchStatus.ready,
                duration_s=duration_s,
                revision=input.revision,
                published_revision=input.revision,
            )
        )
        async with self._sessions() as session:
            result = await session.exec(statement)
            await session.commit()
        return bool(result.rowcount)

    @activity.defn(name="index_match")
    async def index(self, input: IndexInput) -> IndexOutput:
        """Write the match summary and mark the catalog's match ready."""
        summary_key = artifact_key(
            input.organization_id, input.match_id, input.revision, "index", "summary.json"
        )
        manifest_key = artifact_key(
            input.organization_id, input.match_id, input.revision, "index", "manifest.json"
        )
        digest = inputs_digest(asdict(input))
        done = await read_matching_manifest(self._objects, manifest_key, digest, CODE_VERSION)
        if done is not None:
            return IndexOutput(
                summary_key=str(done.outputs["summary_key"]),
                catalog_updated=bool(done.outputs["catalog_updated"]),
            )
        summary = summary_document(input, summary_key)
        await self._objects.put(
            summary_key,
            json.dumps(summary, sort_keys=True, indent=2).encode(),
            content_type="application/json",
        )
        updated = await self._mark_ready(input, duration_s(input))
        await write_manifest(
            self._objects,
            manifest_key,
            Manifest(
                stage="index",
                inputs_digest=digest,
                code_version=CODE_VERSION,
                outputs={"summary_key": summary_key, "catalog_updated": updated},
            ),
        )
        return IndexOutput(summary_key=summary_key, catalog_updated=updated)
