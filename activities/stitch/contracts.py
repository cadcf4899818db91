"""What crosses the Temporal boundary for the stitch stage: its activities' inputs and outputs.

Light on purpose: standard library only, so workflow code can import these types without loading
OpenCV, PyAV or the native blend. Recorded histories (``tests/workflows/histories``) hold these
dataclasses as JSON: their fields (names, types, order, defaults) are fixed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StitchPrepareInput:
    """The match whose panorama geometry to fix."""

    organization_id: str
    match_id: str
    revision: int
    rig_key: str
    scale: float = 1.0


@dataclass
class StitchPrepareOutput:
    """The panorama of the match.

    Attributes:
        panorama_model_key: Object key of the `PanoramaModel` JSON.
        width: Panorama width in pixels.
        height: Panorama height in pixels.
        pitch_polygon: The pitch outline (with a margin) in panorama pixels: where detection
            is worth running.
    """

    panorama_model_key: str
    width: int
    height: int
    pitch_polygon: list[tuple[float, float]]


@dataclass
class StitchChunkInput:
    """One chunk of both recordings to stitch.

    ``right_frame_offset`` is the pair's frame offset (ingest's ``frame_offset``): left frame
    ``i`` is stitched with right frame ``i + right_frame_offset``.
    """

    organization_id: str
    match_id: str
    revision: int
    chunk: int
    left_key: str
    right_key: str
    left_sha256: str
    right_sha256: str
    rig_key: str
    panorama_model_key: str
    start_frame: int
    end_frame: int
    fps: float
    decode_from_left: int | None = None
    decode_from_right: int | None = None
    right_frame_offset: int = 0


@dataclass
class StitchChunkOutput:
    """The chunk's panorama video."""

    chunk: int
    video_key: str
    sha256: str
    frames: int
    manifest_key: str
    from_manifest: bool = False
