"""The index and cleanup light contracts: what crosses the Temporal boundary, nothing heavy.

Workflows and tests import these without the metadata database or the stores. The fields are
recorded in workflow histories: never change them without a replay plan.
"""

from __future__ import annotations

from dataclasses import dataclass


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
        assets: Asset rows registered or brought up to date with it.
    """

    summary_key: str
    catalog_updated: bool
    assets: int = 0


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
