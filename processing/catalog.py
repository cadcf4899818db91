"""What the catalog (the metadata store) records about a match's processing.

A match the API's upload starts gets its row when the session opens (``uploading``) and is
marked ``processing`` with its workflow id and recording assets when the completed upload starts
the workflow (`api.ingest.service`). `register_match` leaves the same row for a match that
``polyvision process`` starts from local files, so the index stage finds it (and marks it
``ready``) and the API lists and serves it like any other.

``polyvision process --org`` names the organization: an existing organization's id, or a slug
whose organization is found or created (``local`` by default). An organization created here has
no members yet: add one to see its matches through the API.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from polyvision.storage.metadata.models import (
    Asset,
    AssetKind,
    Match,
    MatchStatus,
    Organization,
)
from polyvision.temporal import names
from processing.client import ProcessingState

LOCAL_ORGANIZATION = "local"
"""The organization ``polyvision process`` files matches under unless told otherwise."""

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


def match_workflow_id(match: Match) -> str:
    """The id of the match's workflow: the one recorded, else the one its start would use."""
    return match.workflow_id or names.match_workflow_id(str(match.id))


def reconciled_status(current: MatchStatus, state: ProcessingState) -> MatchStatus | None:
    """The catalog status a match should get from its workflow's end, or None to keep it.

    Only a match the catalog still shows as processing changes: the index stage marks success
    (``ready``) itself, but a failed, terminated or cancelled run never reaches it.
    """
    if current != MatchStatus.processing:
        return None
    if state in (ProcessingState.failed, ProcessingState.terminated, ProcessingState.timed_out):
        return MatchStatus.failed
    if state == ProcessingState.cancelled:
        return MatchStatus.cancelled
    return None


async def organization_for(session: AsyncSession, org: str) -> Organization:
    """The organization ``org`` names: an existing one's id, or a slug (found or created).

    A slug's organization is created with the slug as its name when missing.

    Raises:
        LookupError: ``org`` is an id no organization has.
        ValueError: ``org`` is neither an id nor a valid slug (lower-case letters, digits and
            inner hyphens, at most 64 characters).
    """
    try:
        organization_id = uuid.UUID(org)
    except ValueError:
        pass
    else:
        found = await session.get(Organization, organization_id)
        if found is None:
            raise LookupError(f"no organization has the id {org}")
        return found
    if len(org) > 64 or not _SLUG.fullmatch(org):
        raise ValueError(
            f"{org!r} is neither an organization id nor a slug (lower-case letters, digits and "
            "inner hyphens, at most 64 characters)"
        )
    statement = select(Organization).where(col(Organization.slug) == org)
    if (existing := (await session.exec(statement)).first()) is not None:
        return existing
    organization = Organization(name=org, slug=org)
    session.add(organization)
    try:
        await session.commit()
    except IntegrityError:  # created meanwhile by another process
        await session.rollback()
        return (await session.exec(statement)).one()
    await session.refresh(organization)
    return organization


@dataclass(frozen=True)
class Recording:
    """One uploaded recording file, as its asset row records it."""

    kind: AssetKind
    key: str
    size: int
    sha256: str | None
    content_type: str | None


async def register_match(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    match_id: uuid.UUID,
    title: str,
    revision: int,
    recordings: Sequence[Recording],
    home_kit_colour: str | None = None,
    away_kit_colour: str | None = None,
    home_starts_left: bool | None = None,
) -> Match:
    """Create (or bring up to date) the catalog row of a match about to be processed.

    The row ends as a completed upload leaves it: ``processing``, the revision being produced,
    the workflow id, and one asset per recording. Committed before the workflow starts, so the
    index stage always finds the row to mark ``ready``; an existing row keeps its title.

    Raises:
        LookupError: ``match_id`` is a match of another organization.
    """
    match = await session.get(Match, match_id)
    if match is None:
        match = Match(id=match_id, organization_id=organization_id, title=title)
    elif match.organization_id != organization_id:
        raise LookupError(f"match {match_id} belongs to another organization")
    match.status = MatchStatus.processing
    match.revision = revision
    # Side settings given with this run replace the row's; absent ones leave it as it is.
    if home_kit_colour is not None:
        match.home_kit_colour = home_kit_colour.lower()
    if away_kit_colour is not None:
        match.away_kit_colour = away_kit_colour.lower()
    if home_starts_left is not None:
        match.home_starts_left = home_starts_left
    match.workflow_id = names.match_workflow_id(str(match_id))
    session.add(match)
    await session.flush()
    for recording in recordings:
        asset = (
            await session.exec(select(Asset).where(col(Asset.object_key) == recording.key))
        ).first()
        if asset is None:
            asset = Asset(
                organization_id=organization_id,
                match_id=match_id,
                kind=recording.kind,
                object_key=recording.key,
                size_bytes=recording.size,
            )
        asset.size_bytes = recording.size
        asset.sha256 = recording.sha256
        asset.content_type = recording.content_type
        session.add(asset)
    await session.commit()
    await session.refresh(match)
    return match


async def mark_failed(session: AsyncSession, match_id: uuid.UUID) -> None:
    """Mark a registered match ``failed`` (its workflow could not be started)."""
    match = await session.get(Match, match_id)
    if match is not None and match.status is MatchStatus.processing:
        match.status = MatchStatus.failed
        session.add(match)
        await session.commit()
