"""The index stage as a Temporal activity: the match summary and the catalog's "ready" mark.

Thin on purpose: it writes ``summary.json`` (:func:`~activities.index.summary.summary_document`:
the figures every stage reported, and the keys of what the viewers fetch) and, when the
catalog has the match under the same organization, marks it ready with its duration and
revision and registers what the revision published as the match's assets
(:func:`~activities.index.assets.published_assets`: the HLS master, the DASH MPD, thumbnails
and poster, the panorama's stream, the heatmaps). A row of another organization is never
touched, and a row that already shows a newer revision is left alone (an older run finishing
late must not overwrite a reprocess). The manifest is written last.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities.index.assets import PublishedAsset, published_assets
from activities.index.contracts import IndexInput, IndexOutput
from activities.index.summary import duration_s, summary_document
from polyvision.artifacts import artifact_key
from polyvision.heartbeat import heartbeating
from polyvision.stage import StageStep
from polyvision.storage.metadata.models import Asset, Match, MatchStatus
from polyvision.storage.objects import ObjectStore
from polyvision.temporal import names

CODE_VERSION = "index-3"
"""index-3: the published artifacts are registered as catalog assets. index-2: the manifest
records the typed output (StageStep)."""

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
        # Beats while it lists the published files and updates the catalog, so a worker lost
        # here is noticed within the heartbeat timeout.
        async with heartbeating({"step": "index"}):
            return await self._index(input)

    async def _index(self, input: IndexInput) -> IndexOutput:
        step = self._step(input)
        if (done := await step.recorded()) is not None:
            return done
        summary_key = artifact_key(
            input.organization_id, input.match_id, input.revision, STAGE, "summary.json"
        )
        assets = await published_assets(self._objects, input)
        document = summary_document(input, summary_key, assets)
        await self._objects.put(
            summary_key,
            json.dumps(document, sort_keys=True, indent=2).encode(),
            content_type="application/json",
        )
        updated = await self._mark_ready(input, duration_s(input), assets)
        output = IndexOutput(
            summary_key=summary_key,
            catalog_updated=updated,
            assets=len(assets) if updated else 0,
        )
        return await step.record(output)

    def _step(self, input: IndexInput) -> StageStep[IndexOutput]:
        return StageStep.for_match(
            self._objects,
            input,
            stage=STAGE,
            inputs=asdict(input),
            code_version=CODE_VERSION,
            output_type=IndexOutput,
        )

    async def _mark_ready(
        self, input: IndexInput, duration_s: float, assets: list[PublishedAsset]
    ) -> bool:
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
            updated = bool(result.rowcount)
            if updated:
                # In the same transaction: the assets appear with the revision that made them.
                await _register(session, organization_id, match_id, assets)
            await session.commit()
        return updated

    @staticmethod
    def _uuid(value: str) -> uuid.UUID | None:
        try:
            return uuid.UUID(value)
        except ValueError:
            return None


async def _register(
    session: AsyncSession,
    organization_id: uuid.UUID,
    match_id: uuid.UUID,
    assets: list[PublishedAsset],
) -> None:
    """Insert or bring up to date one asset row per published object (keyed by its key)."""
    keys = [asset.key for asset in assets]
    existing = {
        row.object_key: row
        for row in (await session.exec(select(Asset).where(col(Asset.object_key).in_(keys)))).all()
    }
    for asset in assets:
        row = existing.get(asset.key)
        if row is None:
            row = Asset(
                organization_id=organization_id,
                match_id=match_id,
                kind=asset.kind,
                object_key=asset.key,
                size_bytes=asset.size,
            )
        elif (row.organization_id, row.match_id) != (organization_id, match_id):
            continue  # keys carry their match: never re-home another match's row
        row.kind = asset.kind
        row.size_bytes = asset.size
        row.sha256 = asset.sha256
        row.content_type = asset.content_type
        session.add(row)
