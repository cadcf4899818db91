"""The analyze stage's light contracts: what crosses the Temporal boundary, and nothing heavy.

Workflows, the API and tests import these without scipy, pyarrow or the analytics store. The
fields are recorded in workflow histories: never change them without a replay plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from polyvision.artifacts import ChunkSpan

CELL_M = (5.25, 4.25)
"""Heatmap cell size (length, width) in metres: a 20 x 16 grid on the pitch.

Shared with the API, which draws and queries the same grid.
"""

AnalyzeChunk = ChunkSpan
"""The shared chunk span, under the name this stage's inputs use."""


@dataclass
class AnalyzeInput:
    """The whole match's track points, chunk by chunk.

    Attributes:
        organization_id: Tenant of the match.
        match_id: The match.
        revision: Processing revision.
        chunks: Chunks in match order.
        fps: Frame rate of the match.
        overrides_key: Object key of the analyst's identity overrides (JSON
            ``{"merges": [[a, b], ...], "roster": {"identity": "player"}}``,
            `activities.analyze.identities.IdentityOverrides`); empty: none.

    Fields after ``fps`` come with defaults: inputs recorded in histories before they existed
    still decode.
    """

    organization_id: str
    match_id: str
    revision: int
    chunks: list[AnalyzeChunk]
    fps: float
    overrides_key: str = ""


@dataclass
class AnalyzeOutput:
    """What the match's analysis produced.

    Attributes:
        tracks: Distinct tracks seen in the match.
        total_distance_m: Distance covered by all tracks together, metres.
        heatmaps_key: Object key of ``heatmaps.json`` (a grid of point counts per team).
        manifest_key: Where the manifest is.
        from_manifest: True when an earlier attempt's manifest answered.
        figures_key: Object key of ``figures.json`` (per-player and per-team figures, events);
            empty in outputs recorded before it existed.
        players: Player identities in the figures.
        passes: Completed passes of both teams.

    Fields after ``from_manifest`` come with defaults: outputs recorded in histories before
    they existed still decode.
    """

    tracks: int
    total_distance_m: float
    heatmaps_key: str
    manifest_key: str
    from_manifest: bool = False
    figures_key: str = ""
    players: int = 0
    passes: int = 0
