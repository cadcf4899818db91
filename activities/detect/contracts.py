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
        overlap: Tile overlap in source pixels.
        upscale: How much each tile is enlarged for the model: a window of ``tile / upscale``
            source pixels is resized to ``tile`` (``plan_tiles(..., upscale=)``); 1 is native.

    Why these defaults (``bench/detect_real.py`` on the 48 labelled SoccerTrack-v2 panoramas,
    2160x1080, far players 10-25 px tall; tiles over the pitch and detections with their feet
    on it, as the tracker keeps only those; person recall/precision at IoU 0.3):

    - ``upscale`` 1.5 with ``overlap`` 96 (277-px windows) finds the most players at every
      precision: recall 0.68 at precision 0.87 (threshold 0.20), where native 416-px tiles
      reach 0.51 at 0.86 (threshold 0.25); at one threshold (0.15) players under 15 px tall go
      from 21 % found to 48 %, 15-20 px from 67 % to 81 %. Upscaling more does worse (x2:
      0.49-0.53 at 0.85; x1.75 and x2.5 likewise): the upsampled blur scores lower and near
      players are cut by the smaller windows. Cubic resizing is no better than linear. x1.25
      (0.66 at 0.86, 1.2x native's cost) is the cheaper fallback.
    - ``score_threshold`` 0.20: the lowest threshold (0.05 steps) with precision >= 0.85, the
      issue's target precision; recall 0.68 clears the required 0.65 (0.15 would give 0.73 at
      0.83). Over the whole image it gives 0.69 at 0.67, and 16 of the 20 people found on
      frame ``1st_6_000`` are labelled players.
    - Cost: 2.0x native on the pitch tiles (40 tiles a frame instead of 21, 0.72 s against
      0.36 s on one CPU thread; 2.7x when the whole frame is tiled), measured side by side in
      the same run.

    Scored over the whole image instead, the people in the stands (not labelled) keep every
    layout under precision 0.75 at recall 0.65 (this one: recall 0.66 at precision 0.71,
    threshold 0.25): the issue's figure holds on the pitch only. ``tile`` stays the model's 416
    input (the ONNX export has a fixed input size).
    """

    organization_id: str
    match_id: str
    revision: int
    chunk: int
    video_key: str
    video_sha256: str
    first_frame: int
    roi: list[tuple[float, float]] | None = None
    score_threshold: float = 0.2
    tile: int = 416
    overlap: int = 96
    upscale: float = 1.5


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
        stride: People were detected on match frames ``f % stride == 0`` (the track stage
            carries them between); 1, every frame, for outputs recorded before the stride.
    """

    chunk: int
    frames: int
    persons: int
    balls: int
    manifest_key: str
    from_manifest: bool = False
    stride: int = 1
