"""The index stage as a Temporal activity: the match summary and the catalog's "ready" mark.

Thin on purpose: it writes ``summary.json`` (:func:`~activities.index.summary.summary_document`:
the figures every stage reported, and the keys of what the viewers fetch) and, when the
catalog has the match under the same organization, marks it ready with its duration and
revision. A row of another organization is never touched, and a row that already shows a newer
revision is left alone (an older run finishing late must not overwrite a reprocess). The
manifest is written last.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities.index.contracts import IndexInput, IndexOutput
from activities.index.summary import duration_s, summary_document
from polyvision.artifacts import artifact_key
from polyvision.stage import StageStep
from polyvision.storage.metadata.models import Match, MatchStatus
from polyvision.storage.objects import ObjectStore
from polyvision.temporal import names

CODE_VERSION = "index-2"
"""index-2: the manifest records the typed output (StageStep)."""

STAGE = "index"


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

    @activity.defn(name=names.INDEX_MATCH)
    async def index(self, input: IndexInput) -> IndexOutput:
        """Write the match summary and mark the catalog's match ready."""
        step = self._step(input)
        if (done := await step.recorded()) is not None:
            return done
        summary_key = artifact_key(
            input.organization_id, input.match_id, input.revision, STAGE, "summary.json"
        )
        await self._objects.put(
            summary_key,
            json.dumps(summary_document(input, summary_key), sort_keys=True, indent=2).encode(),
            content_type="application/json",
        )
        updated = await self._mark_ready(input, duration_s(input))
        return await step.record(IndexOutput(summary_key=summary_key, catalog_updated=updated))

    def _step(self, input: IndexInput) -> StageStep[IndexOutput]:
        return StageStep.for_match(
            self._objects,
            input,
            stage=STAGE,
            inputs=asdict(input),
            code_version=CODE_VERSION,
            output_type=IndexOutput,
        )

    async def _mark_ready(self, input: IndexInput, duration_s: float) -> bool:
        match_id, organization_id = self._uuid(input.match_id), self._uuid(input.organization_id)
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

    @staticmethod
    def _uuid(value: str) -> uuid.UUID | None:
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
