"""The light contracts of `view_sources`: what crosses the Temporal boundary, nothing heavy.

Workflows import these without any store. The fields are recorded in workflow histories: never
change them without a replay plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from activities.ingest.contracts import ChunkPlan


@dataclass
class ViewSourcesInput:
    """The processed revision whose outputs a view re-renders from.

    Attributes:
        organization_id: Tenant of the match.
        match_id: The match.
        revision: The processed revision.
    """

    organization_id: str
    match_id: str
    revision: int


@dataclass
class ViewSourcesOutput:
    """What the revision's stages stored that the camera's planning and rendering read.

    Attributes:
        chunks: The match's chunks (ingest's plan), in order.
        panorama_keys: Object key of each chunk's panorama video (stitch), in the same order.
        panorama_model_key: Object key of the panorama model JSON (stitch).
        fps: Frame rate of the match.
        frames: Frames in the match.
    """

    chunks: list[ChunkPlan] = field(default_factory=list)
    panorama_keys: list[str] = field(default_factory=list)
    panorama_model_key: str = ""
    fps: float = 0.0
    frames: int = 0
