"""What crosses the Temporal boundary for the ingest stage: its input, output and their parts.

Light on purpose: standard library only, so workflow code (and the API, which builds
`ExpectedRecording`) can import these types without loading FFmpeg or anything else heavy.
Recorded histories (``tests/workflows/histories``) hold these dataclasses as JSON: their fields
(names, types, order, defaults) are fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ExpectedRecording:
    """What the uploader (an edge box) declared for one recording in its upload session.

    Every field is optional: only what was declared is checked.

    Attributes:
        size_bytes: File size in bytes.
        sha256: Hex sha256 of the whole file.
        frame_count: Number of video frames.
    """

    size_bytes: int | None = None
    sha256: str | None = None
    frame_count: int | None = None


@dataclass(frozen=True)
class ChunkPlan:
    """One chunk of the match, the unit of work of the per-chunk stages.

    Attributes:
        index: Position of the chunk, from 0.
        start_frame: First frame of the chunk.
        end_frame: One past the last frame (exclusive).
        start_s: Time of `start_frame`, in seconds from the first frame.
        end_s: Time of `end_frame` (the end of the chunk's last frame).
        decode_from_left: Keyframe of the left file to start decoding from (at or before
            `start_frame`); frames before `start_frame` are decoded and dropped.
        decode_from_right: Same for the right file.
    """

    index: int
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    decode_from_left: int
    decode_from_right: int

    @property
    def frame_count(self) -> int:
        """Number of frames in the chunk."""
        return self.end_frame - self.start_frame


@dataclass
class IngestInput:
    """Input of `IngestActivities.ingest`.

    Attributes:
        organization_id: Owner of the match (first segment of every artifact key).
        match_id: The match.
        revision: Processing revision; a reprocess gets a new one and new artifact keys.
        left_key: Object key of the left camera's recording.
        right_key: Object key of the right camera's recording.
        rig_key: Object key of the rig description (``rig.json``) the stitch stage reads.
        expected_left: What the upload session declared for the left recording, if known.
        expected_right: Same for the right one.
        chunk_seconds: Target chunk length.
    """

    organization_id: str
    match_id: str
    revision: int
    left_key: str
    right_key: str
    rig_key: str
    expected_left: ExpectedRecording | None = None
    expected_right: ExpectedRecording | None = None
    chunk_seconds: float = 10.0


@dataclass
class RecordingSummary:
    """One probed recording, small enough for a workflow payload (keyframes are only counted).

    Attributes:
        key: Object key of the recording.
        codec: FFmpeg codec name (``h264``, ``hevc``).
        width: Frame width in pixels.
        height: Frame height in pixels.
        fps_rational: Exact frame rate, ``"num/den"``.
        frame_count: Exact number of frames.
        duration_s: Span of the frames in seconds.
        keyframe_count: Number of keyframes.
        has_audio: Whether the file has an audio stream.
        pix_fmt: FFmpeg pixel format.
        bit_depth: Bits per luma sample.
        size_bytes: File size.
        sha256: Hex sha256 of the file.
    """

    key: str
    codec: str
    width: int
    height: int
    fps_rational: str
    frame_count: int
    duration_s: float
    keyframe_count: int
    has_audio: bool
    pix_fmt: str
    bit_depth: int
    size_bytes: int
    sha256: str


@dataclass
class IngestOutput:
    """Output of `IngestActivities.ingest`.

    Attributes:
        left: Summary of the left recording.
        right: Summary of the right recording.
        frame_count: Frames per recording (the same on both sides).
        fps: Frame rate as a float, for display and arithmetic.
        fps_rational: Exact frame rate, ``"num/den"``.
        width: Frame width of both recordings.
        height: Frame height of both recordings.
        chunks: The chunks the per-chunk stages fan out over (about 110 KB of payload for a
            120-minute match in 10 s chunks, below Temporal's 256 KB warning).
        manifest_key: Where the manifest of this output is stored.
        left_sha256: Hex sha256 of the left recording.
        right_sha256: Hex sha256 of the right recording.
        rig_sha256: Hex sha256 of the rig file.
        frame_offset: How many frames apart the recordings are, as ingest estimated it from the
            motion where the cameras overlap (`activities.ingest.sync`): right frame
            ``i + frame_offset`` shows the instant of left frame ``i`` (negative: the right
            camera started later). Stitching pairs those frames. 0 when the pair is in sync or
            the estimate was not trusted.
        sync_correlation: Peak correlation of the two cameras' motion at that offset; None when
            no estimate could be made (or for outputs recorded before ingest estimated it).
        sync_warning: One line for the match's status when the recordings are more than a few
            frames apart, or their synchronisation could not be checked; None otherwise.
    """

    left: RecordingSummary
    right: RecordingSummary
    frame_count: int
    fps: float
    fps_rational: str
    width: int
    height: int
    chunks: list[ChunkPlan] = field(default_factory=list)
    manifest_key: str = ""
    left_sha256: str = ""
    right_sha256: str = ""
    rig_sha256: str = ""
    frame_offset: int = 0
    sync_correlation: float | None = None
    sync_warning: str | None = None
