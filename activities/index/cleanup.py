"""Removing a revision's outputs: after a cancel (everything) or before a reprocess (some stages).

A reprocess only needs the manifests (and outputs) of the stages it redoes gone: every stage
recomputes when its manifest is missing, and analytics rows are replaced per chunk anyway. A
cancel removes the whole revision, objects (`activities.index.stage_folders`) and analytics
rows alike.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities.index.contracts import CleanupInput, CleanupOutput
from activities.index.stage_folders import cleanup_prefixes
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.objects import ObjectStore
from polyvision.temporal import names


class CleanupActivities:
    """Cleanup, bound to the worker's stores."""

    def __init__(self, objects: ObjectStore, analytics: AnalyticsStore) -> None:
        self._objects = objects
        self._analytics = analytics

    @activity.defn(name=names.CLEANUP_MATCH)
    async def cleanup(self, input: CleanupInput) -> CleanupOutput:
        """Delete the outputs named by ``input``; deleting what is already gone is fine."""
        prefixes = cleanup_prefixes(input)  # unknown stages fail before anything is deleted
        if input.stages is None:
            await asyncio.to_thread(
                self._analytics.delete_match,
                input.organization_id,
                input.match_id,
                input.revision,
            )
        deleted = 0
        for prefix in prefixes:
            deleted += await self._objects.delete_prefix(prefix)
        return CleanupOutput(deleted)
