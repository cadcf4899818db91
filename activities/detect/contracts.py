"""What crosses the Temporal boundary for the detect stage: its activity's input and output.

Light on purpose: standard library only, so workflow code can import these types without loading
ONNX Runtime, OpenCV or PyAV. Recorded histories (``tests/workflows/histories``) hold these
dataclasses as JSON: their fields (names, types, order, defaults) are fixed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DetectChunkInput:
    """One chunk of panorama video to detect people and the ball in.

    Attributes:
        organization_id: Tenant of the match.
        match_id: The match.
        revision: Processing revision.
        chunk: Chunk index within the revision.
        video_key: Object key of the chunk's panorama video.
        video_sha256: Its digest (part of the manifest's inputs).
        first_frame: Match frame index of the chunk's first frame.
        roi: Panorama polygon ``[(x, y), ...]`` worth detecting in (the pitch); None: all.
        score_threshold: Minimum detection score kept.
        tile: Tile size in pixels (the model's input size).
        overlap: Tile overlap in pixels.
    """

    organization_id: str
    match_id: str
    revision: int
    chunk: int
    video_key: str
    video_sha256: str
    first_frame: int
    roi: list[tuple[float, float]] | None = None
    score_threshold: float = 0.3
    tile: int = 416
    overlap: int = 96


@dataclass
class DetectChunkOutput:
    """What the chunk produced.

    Attributes:
        chunk: Chunk index.
        frames: Frames processed.
        persons: Person detections written.
        balls: Ball detections written.
        manifest_key: Where the manifest is.
        from_manifest: True when an earlier attempt's manifest answered.
    """

    chunk: int
    frames: int
    persons: int
    balls: int
    manifest_key: str
    from_manifest: bool = False
