"""Inputs, outputs and progress of the match workflow: references, counts and digests only.

Frames and detections never travel through Temporal (2 MB payload limit); these dataclasses
hold object keys and small figures. New fields get defaults so running workflows keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from activities.ingest.contracts import ExpectedRecording
from activities.vcam.contracts import CameraSettings

STAGES = ("ingest", "stitch", "detect", "track", "vcam", "analyze", "encode", "index")
"""Every stage in pipeline order; `reprocess(from_stage)` names one of these."""


@dataclass
class MatchInput:
    """Start of a match workflow (workflow id ``match-{match_id}``).

    Attributes:
        organization_id: Tenant.
        match_id: The match.
        left_key: Object key of the left camera's recording.
        right_key: Object key of the right camera's recording.
        rig_key: Object key of the rig (``rig.json``).
        device_id: Edge box that uploaded it, if any.
        revision: Processing revision; outputs live under it.
        expected_left: What the upload promised about the left file.
        expected_right: Same for the right file.
        chunk_seconds: Target chunk length.
        chunks_per_batch: Chunks per child workflow (keeps each history small).
        panorama_scale: Panorama size relative to the default (1.0: about 1.9 x source width).
        task_queue_suffix: Appended to every task queue (isolates a developer's or a test's
            workers on a shared server).
        heartbeat_timeout_s: How long a silent activity may go before Temporal gives its work
            to another worker (a crashed worker is noticed after this long).
        home_kit_colour: The home team's shirt colour ``#rrggbb`` (catalog), if given.
        away_kit_colour: The away team's shirt colour ``#rrggbb`` (catalog), if given.
        home_starts_left: Whether the home team defends the goal at pitch ``x = 0`` in the
            first minutes (catalog), if known.
        teams_swapped: The operator's home/away override (catalog) when the run started.
        progress_interval_s: How long a batch child may hold finished chunks back to tell the
            parent about them in one signal (`workflows.match.PROGRESS_INTERVAL_S`); 0 tells
            each chunk at once, as tests that follow progress chunk by chunk want.
        camera: The virtual camera's mode and parameters, passed to the vcam plan
            (`VcamPlanInput.camera`); the default mode in runs started before modes existed.
        render_on_nvenc: The deployment has workers with a hardware video encoder polling the
            nvenc queue (``PV_NVENC_POOL``): render and encode there. Otherwise on the cpu
            queue with libx264. Routing is by encoder, never by "has a GPU" (an H100 has none).

    The side settings are passed on to the track stage (`TrackInput`) unchanged; a change in
    the catalog after the start is applied by the API at read time, not by this run.
    """

    organization_id: str
    match_id: str
    left_key: str
    right_key: str
    rig_key: str
    device_id: str | None = None
    revision: int = 1
    expected_left: ExpectedRecording | None = None
    expected_right: ExpectedRecording | None = None
    chunk_seconds: float = 10.0
    chunks_per_batch: int = 60
    panorama_scale: float = 1.0
    task_queue_suffix: str = ""
    heartbeat_timeout_s: float = 120.0
    home_kit_colour: str | None = None
    away_kit_colour: str | None = None
    home_starts_left: bool | None = None
    teams_swapped: bool = False
    progress_interval_s: float = 30.0
    camera: CameraSettings = field(default_factory=CameraSettings)
    render_on_nvenc: bool = False


@dataclass
class StageProgress:
    """Chunks done out of the total for one stage, and how long it has taken.

    Stitch, detect and encode (the virtual camera's rendering) also count frames: the workflow
    counts the frames of finished chunks, and the processing client adds the frames the chunks
    in flight have done (their activities' last heartbeats, ``{"frames_done": n}``).
    """

    done: int = 0
    total: int = 0
    started_at: float | None = None
    """Workflow time (seconds since the epoch) the stage started: for stitch, when the run
    entered it; for detect, when the first chunk was stitched (none can be detected before)."""
    finished_at: float | None = None
    """When the stage's last chunk (or its one activity) finished."""
    frames_done: int = 0
    """Frames of the stage's work done (0 for stages that do not count frames)."""
    frames_total: int = 0
    """Frames the stage works through (0 for stages that do not count frames)."""

    @property
    def seconds(self) -> float | None:
        """How long the stage took, once it finished (a property: not part of the payload)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@dataclass
class MatchProgress:
    """The answer of the `progress` query.

    Attributes:
        stage: The stage running now; while several run side by side (stitch and detect, or
            analyze and the rendering counted as encode) the latest of them in pipeline order,
            the one whose progress says how far the match has got; ``done`` at the end.
        running: Every stage running now, in pipeline order (empty between stages and at the
            end).
        warnings: What the match's processing found worth telling, one line each, though it
            goes on: today ingest's synchronisation warning (the recordings are several frames
            apart and stitching corrects it, or their sync could not be checked).
    """

    stage: str = "ingest"
    revision: int = 1
    stages: dict[str, StageProgress] = field(default_factory=dict)
    failed: str | None = None
    running: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ReprocessRequest:
    """Argument of the `reprocess` update."""

    from_stage: str


@dataclass
class MatchOutput:
    """What a finished match workflow produced."""

    revision: int
    frames: int
    chunks: int
    hls_master_key: str
    summary_key: str


VIEW_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
"""What a view's name looks like: it is a folder name in object keys and part of a workflow id
(lower-case letters, digits and inner hyphens, at most 64 characters)."""


@dataclass
class ViewInput:
    """Start of a view workflow: render a processed revision's virtual camera once more.

    Workflow id ``match-{match_id}-view-{view}`` (`polyvision.temporal.names.view_workflow_id`).
    Only the camera is planned, rendered and packaged again; the revision's stitched panorama,
    tracks and ball (what ingest, stitch, detect and track stored) are reused as they are.

    Attributes:
        organization_id: Tenant.
        match_id: The match.
        revision: The processed revision whose outputs are reused; the view's outputs live in
            it, under ``vcam/views/{view}/`` and ``hls/views/{view}/``.
        view: The view's name (`VIEW_NAME_PATTERN`).
        camera: Mode and parameters of the virtual camera.
        task_queue_suffix: Appended to every task queue (as `MatchInput.task_queue_suffix`).
        heartbeat_timeout_s: As `MatchInput.heartbeat_timeout_s`.
        chunks_per_batch: Chunks per rendering child workflow.
        progress_interval_s: As `MatchInput.progress_interval_s`.
        render_on_nvenc: As `MatchInput.render_on_nvenc`.
    """

    organization_id: str
    match_id: str
    revision: int
    view: str
    camera: CameraSettings = field(default_factory=CameraSettings)
    task_queue_suffix: str = ""
    heartbeat_timeout_s: float = 120.0
    chunks_per_batch: int = 60
    progress_interval_s: float = 30.0
    render_on_nvenc: bool = False


@dataclass
class ViewOutput:
    """What a finished view workflow produced.

    Attributes:
        view: The view's name.
        revision: The revision it belongs to.
        frames: Frames the path covers.
        chunks: Chunks rendered.
        path_key: Object key of the view's path (``vcam/views/{view}/path.parquet``).
        hls_master_key: Object key of the view's master playlist
            (``hls/views/{view}/master.m3u8``).
    """

    view: str
    revision: int
    frames: int
    chunks: int
    path_key: str
    hls_master_key: str
