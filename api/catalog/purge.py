"""Removing a match's (or a whole organization's) data from every store.

The catalog rows go first: once they are gone nothing points at the objects removed next, and a
failure half-way leaves orphan objects (harmless, and removed again by a retry of the same
prefix) rather than a catalog entry with missing outputs. Open multipart uploads are aborted so
their parts stop costing storage. A match whose workflow still runs is never purged: its
activities would write outputs for a match that no longer exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.metadata.models import Asset, Match, Upload
from polyvision.storage.objects import ObjectStore, ObjectStoreError


@dataclass
class StoredData:
    """What the stores hold for some matches, gathered before their rows are deleted."""

    organization_id: str
    match_ids: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    # (object key, multipart upload id) of uploads still open.
    multiparts: list[tuple[str, str]] = field(default_factory=list)


async def workflow_running(client: Client, match: Match) -> bool:
    """Whether the match's workflow has a run that has not closed yet.

    Raises:
        RPCError: Temporal could not answer (the caller must not guess).
    """
    if match.workflow_id is None:
        return False
    handle = client.get_workflow_handle(match.workflow_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return description.status in (None, WorkflowExecutionStatus.RUNNING)


async def gather_stored_data(
    session: AsyncSession, organization_id: uuid.UUID, matches: list[Match], prefixes: list[str]
) -> StoredData:
    """Keys, prefixes and open uploads of ``matches`` (all of ``organization_id``)."""
    data = StoredData(organization_id=str(organization_id), prefixes=list(prefixes))
    ids = [match.id for match in matches]
    data.match_ids = [str(match_id) for match_id in ids]
    if not ids:
        return data
    assets = await session.exec(
        select(Asset.object_key).where(
            col(Asset.organization_id) == organization_id, col(Asset.match_id).in_(ids)
        )
    )
    data.keys.update(assets.all())
    uploads = await session.exec(
        select(Upload).where(
            col(Upload.organization_id) == organization_id, col(Upload.match_id).in_(ids)
        )
    )
    for upload in uploads.all():
        data.keys.update(key for key in (upload.left_key, upload.right_key, upload.rig_key) if key)
        for key, upload_id in (
            (upload.left_key, upload.left_upload_id),
            (upload.right_key, upload.right_upload_id),
        ):
            if key and upload_id:
                data.multiparts.append((key, upload_id))
    return data


async def purge_stored_data(
    objects: ObjectStore, analytics: AnalyticsStore, data: StoredData
) -> int:
    """Remove what ``data`` names from the object and analytics stores; objects removed."""
    for key, upload_id in data.multiparts:
        # Already completed or aborted: nothing left to free.
        with contextlib.suppress(ObjectStoreError):
            await objects.abort_multipart(key, upload_id)
    removed = 0
    for prefix in data.prefixes:
        removed += await objects.delete_prefix(prefix)
    for key in sorted(data.keys):
        await objects.delete(key)
        removed += 1
    for match_id in data.match_ids:
        await asyncio.to_thread(analytics.delete_match, data.organization_id, match_id)
    return removed
