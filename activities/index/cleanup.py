"""Removing a revision's outputs: after a cancel (everything) or before a reprocess (some stages).

A reprocess only needs the manifests (and outputs) of the stages it redoes gone: every stage
recomputes when its manifest is missing, and analytics rows are replaced per chunk anyway. A
cancel removes the whole revision, objects and analytics rows alike.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio import activity

from polyvision.artifacts import artifact_key, match_prefix
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.objects import ObjectStore

# The object folders each stage writes under a revision.
STAGE_FOLDERS: dict[str, tuple[str, ...]] = {
    "ingest": ("ingest",),
    "stitch": ("stitch",),
    "detect": ("detect",),
    "track": ("track",),
    "vcam": ("vcam",),
    "analyze": ("analyze",),
    "encode": ("encode", "hls"),
    "index": ("index",),
}


@dataclass
class CleanupInput:
    """What to remove.

    Attributes:
        organization_id: Tenant.
        match_id: The match.
        revision: The revision whose outputs go.
        stages: Only these stages' objects; None: the whole revision, analytics rows included.
    """

    organization_id: str
    match_id: str
    revision: int
    stages: list[str] | None = None


@dataclass
class CleanupOutput:
    objects_deleted: int


class CleanupActivities:
    """Cleanup, bound to the worker's stores."""

    def __init__(self, objects: ObjectStore, analytics: AnalyticsStore) -> None:
        self._objects = objects
        self._analytics = analytics

    @activity.defn(name="cleanup_match")
    async def cleanup(self, input: CleanupInput) -> CleanupOutput:
        """Delete the outputs named by ``input``; deleting what is already gone is fine."""
        if input.stages is None:
            prefixes = [match_prefix(input.organization_id, input.match_id, input.revision) + "/"]
            await asyncio.to_thread(
                self._analytics.delete_match,
                input.organization_id,
                input.match_id,
                input.revision,
            )
        else:
            unknown = sorted(set(input.stages) - set(STAGE_FOLDERS))
            if unknown:
                raise ValueError(f"unknown stages {unknown}")
            prefixes = [
                artifact_key(input.organization_id, input.match_id, input.revision, folder) + "/"
                for stage in input.stages
                for folder in STAGE_FOLDERS[stage]
            ]
        deleted = 0
        for prefix in prefixes:
            deleted += await self._objects.delete_prefix(prefix)
        return CleanupOutput(deleted)
