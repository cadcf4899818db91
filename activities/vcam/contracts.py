"""The vcam stage's light contracts: what crosses the Temporal boundary, and nothing heavy.

Workflows and tests import these without the planner, the renderer or any video library.
The fields are recorded in workflow histories: never change them without a replay plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from polyvision.artifacts import ChunkSpan

VcamChunk = ChunkSpan
"""The shared chunk span, under the name this stage's inputs use."""

CAMERA_MODES = ("director", "zones", "centered")
"""The virtual camera's modes (`activities.vcam.modes`); the first is the default."""

DEFAULT_VIEW_SIZE = (1920, 1080)
"""The rendered view's size unless a request says otherwise."""


@dataclass
class Rendition:
    """One rung of the ladder every rendered frame is scaled into.

    Attributes:
        name: Short name, also the folder of its segments (``1080p``).
        width: Pixels (even).
        height: Pixels (even).
        max_kbps: Peak video bitrate the encoder is capped at (capped CRF), kbit/s.
    """

    name: str
    width: int
    height: int
    max_kbps: int


DEFAULT_LADDER = [
    Rendition("1080p", 1920, 1080, 6000),
    Rendition("720p", 1280, 720, 3000),
    Rendition("480p", 854, 480, 1200),
]
"""The renditions rendered unless a request names others (the first is the top one)."""


@dataclass
class RenditionChunk:
    """One rendition of one rendered chunk.

    Attributes:
        name: The rendition's name (`Rendition.name`).
        width: Pixels.
        height: Pixels.
        video_key: Object key of the chunk's MP4 in that rendition.
        sha256: Its digest.
        size: Its size in bytes.
        codecs: RFC 6381 codec string of its video (``avc1.640028``).
    """

    name: str
    width: int
    height: int
    video_key: str
    sha256: str
    size: int
    codecs: str


@dataclass
class CameraSettings:
    """How the virtual camera is planned and rendered: a mode and overrides of its parameters.

    Attributes:
        mode: One of :data:`CAMERA_MODES`.
        params: Overrides of the mode's tuning by name (`activities.vcam.modes` documents
            them); unknown names are refused by the planner.
        causal: Plan without looking at future frames (as a live camera would).
    """

    mode: str = CAMERA_MODES[0]
    params: dict[str, float] = field(default_factory=dict)
    causal: bool = False


@dataclass
class VcamPlanInput:
    """Plan the virtual camera of a whole match revision.

    Attributes:
        organization_id: Tenant of the match.
        match_id: The match.
        revision: Processing revision.
        chunks: Every chunk of the match; the path covers frames ``0 .. max(first + frames)``.
        panorama_model_key: Object key of the panorama model JSON (stitch stage).
        fps: Frame rate of the match.
        camera: Mode and parameters (defaults in runs recorded before modes existed).
        view: Name of a re-rendered view (its artifacts live under ``vcam/views/<view>/``);
            empty for the match's own view (``vcam/path.parquet``).
    """

    organization_id: str
    match_id: str
    revision: int
    chunks: list[VcamChunk]
    panorama_model_key: str
    fps: float
    camera: CameraSettings = field(default_factory=CameraSettings)
    view: str = ""


@dataclass
class VcamPlanOutput:
    """The stored path.

    Attributes:
        path_key: Object key of the path (Parquet, :data:`activities.vcam.plan.PATH_SCHEMA`).
        frames: Frames the path covers.
        manifest_key: Where the manifest is.
        from_manifest: True when an earlier attempt's manifest answered.
    """

    path_key: str
    frames: int
    manifest_key: str
    from_manifest: bool = False


@dataclass
class VcamRenderInput:
    """Render the virtual camera's views of one panorama chunk.

    Attributes:
        organization_id: Tenant of the match.
        match_id: The match.
        revision: Processing revision.
        chunk: Chunk index.
        panorama_video_key: Object key of the chunk's panorama video (stitch stage).
        path_key: Object key of the planned path (``VcamPlanOutput.path_key``).
        first_frame: Match frame number of the chunk's first frame.
        frames: Frames in the chunk (the rendered video must have as many).
        fps: Frame rate of the match.
        width: Width of the rendered view in pixels (even).
        height: Height of the rendered view in pixels (even).
        view: Name of a re-rendered view (``VcamPlanInput.view``); empty for the match's own.
        ladder: Renditions to scale every rendered frame into; empty: :data:`DEFAULT_LADDER`
            (``width`` x ``height`` is the size the view is rendered at, the top rendition's).
        gop_frames: Keyframe interval in frames, the same in every rendition (closed GOPs, so
            segments can be cut at any multiple of it); 0: one second of video.
    """

    organization_id: str
    match_id: str
    revision: int
    chunk: int
    panorama_video_key: str
    path_key: str
    first_frame: int
    frames: int
    fps: float
    width: int = DEFAULT_VIEW_SIZE[0]
    height: int = DEFAULT_VIEW_SIZE[1]
    view: str = ""
    ladder: list[Rendition] = field(default_factory=list)
    gop_frames: int = 0


@dataclass
class VcamRenderOutput:
    """The rendered chunk.

    Attributes:
        chunk: Chunk index.
        video_key: Object key of the H.264 MP4.
        sha256: Its digest.
        frames: Frames rendered.
        manifest_key: Where the manifest is.
        from_manifest: True when an earlier attempt's manifest answered.
        renditions: Every rendition of the chunk, top first (``video_key`` is the top one's);
            empty in outputs recorded before the ladder.
    """

    chunk: int
    video_key: str
    sha256: str
    frames: int
    manifest_key: str
    from_manifest: bool = False
    renditions: list[RenditionChunk] = field(default_factory=list)
