"""The track stage's light contracts: what crosses the Temporal boundary, and nothing heavy.

Workflows and tests import these without the tracker, numpy algorithms or the analytics store.
The fields are recorded in workflow histories: never change them without a replay plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from polyvision.artifacts import ChunkSpan

TrackChunk = ChunkSpan
"""The shared chunk span, under the name this stage's inputs use."""


@dataclass
class TrackInput:
    """The whole match's detections, chunk by chunk.

    Attributes:
        organization_id: Tenant.
        match_id: The match.
        revision: Processing revision.
        chunks: Chunks in match order.
        panorama_model_key: Object key of the panorama model JSON (stitch stage).
        fps: Frame rate of the match.
        detections_digest: Digest of the detect stage's outputs (manifest input).
        home_kit_colour: The home team's shirt colour ``#rrggbb`` from the catalog, if given.
        away_kit_colour: The away team's shirt colour ``#rrggbb``, if given.
        home_starts_left: Whether the home team defends the goal at pitch ``x = 0`` in the
            first minutes, if known.
        teams_swapped: The operator's override: swap home and away whatever the rules decide.
        detect_stride: People were detected on match frames ``f % detect_stride == 0`` (the
            detect stage's ``DetectChunkOutput.stride``); the tracker carries the frames between.

    The last four are the catalog's side settings (`activities.track.sides.SideSettings`), which
    map the two kit clusters to home and away. They come last and with defaults: inputs
    recorded in histories before they existed still decode.
    """

    organization_id: str
    match_id: str
    revision: int
    chunks: list[TrackChunk]
    panorama_model_key: str
    fps: float
    detections_digest: str = ""
    home_kit_colour: str | None = None
    away_kit_colour: str | None = None
    home_starts_left: bool | None = None
    teams_swapped: bool = False
    detect_stride: int = 1


@dataclass
class TrackOutput:
    """Identities and points written."""

    tracks: int
    points: int
    manifest_key: str
    from_manifest: bool = False
    points_per_chunk: list[int] = field(default_factory=list)
