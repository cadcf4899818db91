"""The minimap stage's light contracts: what crosses the Temporal boundary, and nothing heavy.

Workflows and tests import these without OpenCV, PyAV or the analytics store. The fields are
recorded in workflow histories: never change them without a replay plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from polyvision.artifacts import ChunkSpan

MINIMAP_SIZE = (640, 416)
"""The minimap's video size: the 105 x 68 m pitch at 5.6 px/m with a margin, even sides."""


@dataclass
class MinimapInput:
    """Draw the match from above, chunk by chunk.

    Attributes:
        organization_id: Tenant of the match.
        match_id: The match.
        revision: Processing revision.
        chunks: Every chunk in match order; one minimap video per chunk, as long as it.
        fps: Frame rate of the match.
        home_kit_colour: Team 0's dot colour ``#rrggbb`` (the catalog's home kit), if known.
        away_kit_colour: Team 1's dot colour ``#rrggbb``, if known.
        gop_frames: Keyframe interval in frames (closed GOPs, as the other renditions); 0: one
            second of video.
    """

    organization_id: str
    match_id: str
    revision: int
    chunks: list[ChunkSpan]
    fps: float
    home_kit_colour: str | None = None
    away_kit_colour: str | None = None
    gop_frames: int = 0


@dataclass
class MinimapOutput:
    """The minimap's chunk videos.

    Attributes:
        chunk_keys: Object keys of the chunks' MP4s in match order.
        width: Pixels.
        height: Pixels.
        manifest_key: Where the manifest is.
        from_manifest: True when an earlier attempt's manifest answered.
    """

    chunk_keys: list[str] = field(default_factory=list)
    width: int = MINIMAP_SIZE[0]
    height: int = MINIMAP_SIZE[1]
    manifest_key: str = ""
    from_manifest: bool = False
