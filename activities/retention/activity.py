"""The retention activity: expire the matches past their organization's retention.

For each match `activities.retention.policy` chooses, oldest first:

1. its analytics rows go, every table `AnalyticsStore.delete_match` knows (the slice tables,
   the match-wide figure tables and their materialized views' targets, every revision);
2. its objects go: everything under ``orgs/{org}/matches/{match}/`` (every revision's outputs),
   its uploads' folders ``orgs/{org}/uploads/{upload}/`` (the recordings; open multipart
   uploads are aborted) and any other key its catalog assets name;
3. last, the catalog: its asset rows are deleted and the match is marked ``expired`` with no
   published revision. The row itself stays (title, teams, date), so the organization's list
   still shows the match was played and why its video is gone; nothing points at removed data.

The catalog is written last, so a crash half-way leaves a match still eligible and the next
run (or a retry) removes the rest; removing what is already gone is fine, so running twice is
harmless. Each match is judged again from a fresh read just before its data goes: a match that
started reprocessing in the meantime is skipped. A heartbeat follows every match.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime

import structlog
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.retention.contracts import ExpiredMatch, ExpireMatchesInput, ExpireMatchesOutput
from activities.retention.policy import IN_FLIGHT, MatchAge, cutoff, expired_matches, is_expired
from polyvision.heartbeat import heartbeat, heartbeating
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.metadata.models import Asset, Match, MatchStatus, Organization, Upload
from polyvision.storage.objects import ObjectStore, ObjectStoreError
from polyvision.temporal import names

log = structlog.get_logger(__name__)


def match_folder(organization_id: str, match_id: str) -> str:
    """Every revision's outputs of a match: ``orgs/{org}/matches/{match}/``."""
    return f"orgs/{organization_id}/matches/{match_id}/"


def upload_folder(organization_id: str, upload_id: str) -> str:
    """An upload session's files (`api.ingest.session`): ``orgs/{org}/uploads/{upload}/``."""
    return f"orgs/{organization_id}/uploads/{upload_id}/"


class RetentionActivities:
    """The retention activity, bound to the worker's stores and catalog.

    Args:
        objects: The object store.
        analytics: The analytics store.
        sessions: Catalog sessions; None where the worker has no catalog (the activity then
            fails without retrying: retention needs the organizations' settings).
    """

    def __init__(
        self,
        objects: ObjectStore,
        analytics: AnalyticsStore,
        sessions: async_sessionmaker[AsyncSession] | None,
    ) -> None:
        self._objects = objects
        self._analytics = analytics
        self._sessions = sessions

    @activity.defn(name=names.EXPIRE_MATCHES)
    async def expire_matches(self, input: ExpireMatchesInput) -> ExpireMatchesOutput:
        """Expire up to ``input.limit`` matches past retention at ``input.now``."""
        sessions = self._require_sessions()
        candidates = await self._candidates(sessions, input.now, input.limit + 1)
        chosen = expired_matches(candidates, input.now)
        more = len(chosen) > input.limit
        output = ExpireMatchesOutput(more=more)
        for match in chosen[: input.limit]:
            # Beats while one match's data goes (a large prefix on S3 takes a while), then once.
            async with heartbeating({"expired": len(output.expired), "match_id": match.match_id}):
                done = await self._expire(sessions, match, input.now)
            if done is not None:
                output.expired.append(done)
                log.info(
                    "retention.match_expired",
                    organization_id=done.organization_id,
                    match_id=done.match_id,
                    objects_deleted=done.objects_deleted,
                    retention_days=match.retention_days,
                )
            heartbeat({"expired": len(output.expired)})
        return output

    def _require_sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise ApplicationError(
                "retention needs the catalog (PV_DATABASE_URL) on the worker",
                type="NoCatalog",
                non_retryable=True,
            )
        return self._sessions

    @staticmethod
    async def _candidates(
        sessions: async_sessionmaker[AsyncSession], now: datetime, per_org: int
    ) -> list[MatchAge]:
        """Matches created before their organization's cutoff and not yet expired or in flight
        (at most ``per_org`` per organization, oldest first); the policy judges them again."""
        skipped = [MatchStatus.expired, *IN_FLIGHT]
        found: list[MatchAge] = []
        async with sessions() as session:
            organizations = (
                await session.exec(select(Organization.id, Organization.retention_days))
            ).all()
            for organization_id, retention_days in organizations:
                rows = await session.exec(
                    select(Match.id, Match.status, Match.created_at)
                    .where(
                        col(Match.organization_id) == organization_id,
                        col(Match.created_at) < cutoff(now, retention_days),
                        col(Match.status).not_in(skipped),
                    )
                    .order_by(col(Match.created_at), col(Match.id))
                    .limit(per_org)
                )
                found += [
                    MatchAge(
                        str(organization_id),
                        str(match_id),
                        MatchStatus(status),
                        created,
                        retention_days,
                    )
                    for match_id, status, created in rows.all()
                ]
        return found

    async def _expire(
        self, sessions: async_sessionmaker[AsyncSession], chosen: MatchAge, now: datetime
    ) -> ExpiredMatch | None:
        org_id, match_id = uuid.UUID(chosen.organization_id), uuid.UUID(chosen.match_id)
        async with sessions() as session:
            match = await session.get(Match, match_id)
            if match is None or match.organization_id != org_id:
                return None
            fresh = MatchAge(
                chosen.organization_id,
                chosen.match_id,
                match.status,
                match.created_at,
                chosen.retention_days,
            )
            if not is_expired(fresh, now):
                return None  # a reprocess started since the candidates were read
            asset_keys = (
                await session.exec(
                    select(Asset.object_key).where(
                        col(Asset.organization_id) == org_id, col(Asset.match_id) == match_id
                    )
                )
            ).all()
            uploads = (
                await session.exec(
                    select(Upload).where(
                        col(Upload.organization_id) == org_id, col(Upload.match_id) == match_id
                    )
                )
            ).all()

        await asyncio.to_thread(
            self._analytics.delete_match, chosen.organization_id, chosen.match_id
        )
        deleted = await self._objects.delete_prefix(
            match_folder(chosen.organization_id, chosen.match_id)
        )
        for upload in uploads:
            for key, upload_id in (
                (upload.left_key, upload.left_upload_id),
                (upload.right_key, upload.right_upload_id),
            ):
                if key and upload_id:
                    # Already completed or aborted: nothing left to free.
                    with contextlib.suppress(ObjectStoreError):
                        await self._objects.abort_multipart(key, upload_id)
            deleted += await self._objects.delete_prefix(
                upload_folder(chosen.organization_id, str(upload.id))
            )
        own = f"orgs/{chosen.organization_id}/"
        for key in sorted(set(asset_keys)):
            if key.startswith(own):  # never another tenant's object, whatever a row says
                await self._objects.delete(key)

        async with sessions() as session:
            await session.exec(
                delete(Asset).where(
                    col(Asset.organization_id) == org_id, col(Asset.match_id) == match_id
                )
            )
            await session.exec(
                update(Match)
                .where(
                    col(Match.id) == match_id,
                    col(Match.organization_id) == org_id,
                    col(Match.status).not_in(list(IN_FLIGHT)),
                )
                .values(status=MatchStatus.expired, published_revision=None)
            )
            await session.commit()
        return ExpiredMatch(chosen.organization_id, chosen.match_id, deleted)
