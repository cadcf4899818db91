"""Synchronisation of a match's two recordings: their frame offset, from the motion in the overlap.

Two cameras started by hand, or by two boxes, rarely start on the same instant. Ingest estimates
how many frames apart the recordings are, and stitching pairs the frames that show the same
instant (`activities.stitch.chunk`).

Sign convention: an offset ``d`` means that **right frame ``i + d`` shows the instant of left
frame ``i``**. ``d < 0``: the right camera started ``-d`` frames after the left one (its frame 0
shows the instant of left frame ``-d``); ``d > 0``: it started ``d`` frames before.

How (`estimate_offset`):

1. The overlap. Points of a band around the halfway line (within `BAND_M` of it, across the
   whole width, `GRID_M` apart, `SAMPLE_HEIGHT_M` above the ground) are projected into both
   cameras with the rig (`polyvision.geometry.project`) and kept where both cameras see them.
   They are grouped into `CELL_M` square cells: each cell is the same patch of pitch in both
   cameras, so the two cameras' signals below are comparable cell for cell.
2. A motion signal per camera. The first `seconds` of each recording are decoded sequentially
   (no seeking, so keyframes do not matter; FFmpeg's threads; both recordings at once) at a
   reduced size in grey, each frame is warped onto the band (``cv2.remap``), and each cell's
   motion energy is the mean of its points' absolute change from the previous frame beyond
   `NOISE_LEVEL`: an array ``[frames - 1, cells]``.
3. Each frame's median over the cells is removed (what changes everywhere at once, exposure or
   an encoder's pulse, is not motion), then each cell's moving average over `HIGH_PASS_FRAMES`
   frames: a player walking through a cell makes a bump many frames wide, which would let
   neighbouring offsets correlate almost as well; what the high-pass leaves are the changes
   whose timing pins the offset to the frame.
4. For every candidate ``d`` in ``[-max_offset, max_offset]``, the normalised cross-correlation
   (over every frame and cell at once, each cell's mean removed, `MOTION_FLOOR` keeping
   near-static signals near 0) of the left frames ``[m, n - m)`` with the right frames
   ``[m + d, n - m + d)``: the same left frames for every candidate, so no candidate wins by
   being scored on fewer frames. The best candidate is the offset.

Figures (`SyncEstimate`): ``correlation`` is the peak value; ``confidence`` is
``1 - second / peak``, where ``second`` is the best correlation at least `PEAK_HALF_WIDTH`
frames from the peak (a peak-to-second-peak ratio ``r`` gives ``1 - 1/r``), 0 when the peak sits
on the edge of the searched range (the true offset may lie beyond). A static scene has no
motion to correlate: both figures come out near 0 and `sync_check` keeps the recordings as they
are.

Cost: decoding the first 20 s of both recordings at 640 px wide, about 5 s of two cores for a
3072x1728 HEVC pair (the real SoccerTrack clip: 10 s in 3 s).
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from polyvision.geometry import Rig, RigError, project

Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

DEFAULT_MAX_OFFSET = 25
"""Largest offset searched, in frames either way (1 s at 25 fps)."""
DEFAULT_SECONDS = 20.0
"""How much of the start of the recordings is correlated (the whole clip when shorter)."""
DEFAULT_WIDTH = 640
"""Width the frames are decoded at (smaller recordings keep their size)."""

BAND_M = 7.5
"""Half-width of the band around the halfway line where the cameras overlap, metres."""
GRID_M = 0.25
"""Spacing of the pitch points sampled in the band, metres."""
SAMPLE_HEIGHT_M = 0.5
"""Height above the ground of the band's points: about where a running player's legs and arms,
which make most of the motion, are. A player's moving body then lands on the same pitch point in
both cameras (on the ground plane it would be displaced away from each camera by a different
amount, which shifts the estimate by a fraction of a frame for players running across it)."""
CELL_M = 2.0
"""Side of a cell whose motion energy is one signal, metres: coarse enough that calibration
errors and the parallax of the body parts above and below the band's height stay inside a cell,
fine enough that separate players make separate signals."""
MIN_CELL_COVERAGE = 0.5
"""A cell counts when both cameras see at least this share of its points."""
NOISE_LEVEL = 8.0
"""Grey-level changes up to this are compression and sensor noise, not motion: each point's
change counts only beyond it. Encoders pulse (a keyframe's sharper picture, the periodic quality
of B-frames) at the same places in both files, which would correlate at the recordings' own
frame alignment whatever the cameras filmed."""
MOTION_FLOOR = 0.1
"""Fluctuations of a cell's energy this small (grey levels) count as no motion: added to both
sides' energy in the correlation's denominator, it pulls the correlation of near-static signals
towards 0 while a match's motion (fluctuations of a few tenths to a few levels) is barely
touched."""
HIGH_PASS_FRAMES = 11
"""Window of the moving average subtracted from each cell's energy, frames."""
PEAK_HALF_WIDTH = 3
"""Candidates this many frames or more from the peak compete with it for the confidence."""
MIN_SEGMENT_FRAMES = 25
"""Fewest frames the correlation is computed over; shorter clips search smaller offsets."""

SYNC_WARN_FRAMES = 2
"""Offsets larger than this (in frames, either way) are a warning in the match's status."""
MIN_CORRELATION = 0.25
"""Below this peak correlation the estimate is not trusted (too little common motion). The two
cameras of one match correlate about 0.4 (the real SoccerTrack pair) to 0.8 (synthetic matches)
at their offset; unrelated recordings 0.1 to 0.35 at their best offset over a few seconds, a
static scene 0."""
MIN_CONFIDENCE = 0.6
"""Below this confidence the estimate is not trusted (another offset does almost as well). The
two cameras of one match give 0.85 to 0.95."""


@dataclass(frozen=True)
class SyncEstimate:
    """The frame offset of a pair of recordings, as estimated from their motion.

    Attributes:
        offset_frames: ``d`` such that right frame ``i + d`` shows the instant of left frame
            ``i`` (see the module's docstring for the sign).
        correlation: Normalised cross-correlation of the two motion signals at that offset, in
            ``[-1, 1]``.
        confidence: How clearly the peak stands out, in ``[0, 1]``: ``1 - second / peak`` with
            ``second`` the best correlation at least `PEAK_HALF_WIDTH` frames away; 0 when the
            peak is on the edge of the searched range or nothing could be correlated.
        frames_used: Frames decoded from each recording (0 when the cameras share no view).
    """

    offset_frames: int
    correlation: float
    confidence: float
    frames_used: int

    @property
    def reliable(self) -> bool:
        """Whether the estimate is trusted: enough common motion, and a clear peak."""
        return self.correlation >= MIN_CORRELATION and self.confidence >= MIN_CONFIDENCE


@dataclass(frozen=True)
class SyncCheck:
    """What ingest makes of a pair's synchronisation.

    Attributes:
        frame_offset: The offset stitching applies (right frame ``i + frame_offset`` with left
            frame ``i``): the estimate when it is reliable, else 0.
        correlation: Peak correlation of the estimate; None when none could be made.
        warning: One line for the match's status when the pair is more than
            `SYNC_WARN_FRAMES` apart or could not be checked; None otherwise.
        estimate: The estimate itself, None when none could be made.
    """

    frame_offset: int
    correlation: float | None
    warning: str | None
    estimate: SyncEstimate | None


@dataclass(frozen=True)
class Overlap:
    """Where both cameras see the band, as remap tables at the decoded size.

    Attributes:
        maps: Per camera, the ``(map_x, map_y)`` float32 tables ``[ny, nx]`` sampling the band.
        points: Flat indices (into ``[ny * nx]``) of the band points in a counted cell.
        cells: The cell of each of those points, ``0 .. n_cells - 1``.
        counts: Points per cell.
    """

    maps: dict[str, tuple[Float32Array, Float32Array]]
    points: IntArray
    cells: IntArray
    counts: Float64Array

    @property
    def n_cells(self) -> int:
        return len(self.counts)


def decode_size(width: int, height: int, target_width: int = DEFAULT_WIDTH) -> tuple[int, int]:
    """The reduced (even) size a ``width`` x ``height`` recording is decoded at."""
    scaled = min(target_width, width)
    scaled -= scaled % 2
    scaled_height = max(2, round(height * scaled / width))
    return max(2, scaled), scaled_height - scaled_height % 2


def overlap(rig: Rig, sizes: dict[str, tuple[int, int]]) -> Overlap:
    """The band around the halfway line that both cameras see, cut into cells.

    Args:
        rig: The cameras ("left" and "right") and the pitch.
        sizes: Per camera, the ``(width, height)`` its frames are decoded at (the rig's pixel
            coordinates are scaled to it).
    """
    half = rig.pitch_length_m / 2
    xs = np.arange(half - BAND_M, half + BAND_M + GRID_M / 2, GRID_M)
    ys = np.arange(0.0, rig.pitch_width_m + GRID_M / 2, GRID_M)
    grid_x, grid_y = np.meshgrid(xs, ys)
    points = np.stack(
        [grid_x.ravel(), grid_y.ravel(), np.full(grid_x.size, SAMPLE_HEIGHT_M)], axis=1
    )
    seen = np.ones(len(points), np.bool_)
    maps: dict[str, tuple[Float32Array, Float32Array]] = {}
    for side in ("left", "right"):
        camera = rig.cameras[side]
        width, height = sizes[side]
        pixels, in_front = project(camera, points)
        # Pixel centres sit at integer coordinates at both sizes.
        scale_x = width / camera.image_size[0]
        scale_y = height / camera.image_size[1]
        x = (pixels[:, 0] + 0.5) * scale_x - 0.5
        y = (pixels[:, 1] + 0.5) * scale_y - 0.5
        seen &= in_front & (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
        maps[side] = (
            x.reshape(grid_x.shape).astype(np.float32),
            y.reshape(grid_x.shape).astype(np.float32),
        )
    step = max(1, round(CELL_M / GRID_M))
    rows, cols = np.divmod(np.arange(len(points)), grid_x.shape[1])
    cols_of_cells = -(-grid_x.shape[1] // step)
    cell_of_point = (rows // step) * cols_of_cells + cols // step
    counts = np.bincount(cell_of_point[seen], minlength=int(cell_of_point.max()) + 1)
    kept_cells = np.flatnonzero(counts >= MIN_CELL_COVERAGE * step * step)
    renumber = np.full(len(counts), -1, np.intp)
    renumber[kept_cells] = np.arange(len(kept_cells))
    kept = seen & (renumber[cell_of_point] >= 0)
    flat = np.flatnonzero(kept)
    cells = renumber[cell_of_point[flat]]
    return Overlap(
        maps=maps,
        points=flat,
        cells=cells,
        counts=np.bincount(cells, minlength=len(kept_cells)).astype(np.float64),
    )


def motion_signal(
    path: Path,
    maps: tuple[Float32Array, Float32Array],
    area: Overlap,
    size: tuple[int, int],
    frames: int,
) -> Float32Array:
    """The motion energy of each cell of the overlap, frame to frame, in one recording.

    Args:
        path: The recording.
        maps: The camera's remap tables onto the band (`overlap`).
        area: The overlap's cells.
        size: ``(width, height)`` to decode at.
        frames: How many frames to decode from the start (fewer when the recording is shorter).

    Returns:
        ``[decoded - 1, cells]``: mean absolute grey-level change of each cell from one frame to
        the next.
    """
    map_x, map_y = maps
    energies: list[Float64Array] = []
    previous: Float32Array | None = None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if index >= frames:
                break
            grey = frame.reformat(
                width=size[0], height=size[1], format="gray", interpolation="AREA"
            ).to_ndarray()
            band = cv2.remap(
                np.asarray(grey, np.float32),
                map_x,
                map_y,
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            warped = np.asarray(band, np.float32).ravel()[area.points]
            if previous is not None:
                change = np.maximum(np.abs(warped - previous) - NOISE_LEVEL, 0.0)
                energies.append(
                    np.bincount(area.cells, weights=change, minlength=area.n_cells) / area.counts
                )
            previous = warped
    if not energies:
        return np.zeros((0, area.n_cells), np.float32)
    return np.asarray(np.stack(energies), dtype=np.float32)


def high_pass(signal: Float32Array, window: int = HIGH_PASS_FRAMES) -> Float32Array:
    """A ``[frames, cells]`` signal without its common mode and its slow changes.

    Each frame's median over the cells is removed first (a change everywhere at once is not
    motion), then each cell's centred moving average over ``window`` frames (edges replicated).
    """
    if len(signal) == 0 or signal.shape[1] == 0:
        return signal
    local = np.asarray(signal - np.median(signal, axis=1, keepdims=True), np.float32)
    smooth = cv2.blur(local, (1, window), borderType=cv2.BORDER_REPLICATE)
    return np.asarray(local - smooth, np.float32)


def correlate(
    left: Float32Array, right: Float32Array, max_offset: int, floor: float = MOTION_FLOOR
) -> Float64Array:
    """Normalised cross-correlation of two ``[frames, cells]`` signals at each offset.

    Entry ``k`` is for offset ``d = k - max_offset``: left frames ``[m, n - m)`` against right
    frames ``[m + d, n - m + d)`` (``m = max_offset``, ``n`` the shorter signal's length), each
    cell's mean over the segment removed, every frame and cell pooled. Each side's energy in the
    denominator gets ``floor ** 2`` per value (see `MOTION_FLOOR`); 0 makes it the plain
    Pearson correlation. Signals with no variation correlate 0.
    """
    n = min(len(left), len(right))
    m = max_offset
    segment = left[m : n - m].astype(np.float64)
    segment -= segment.mean(axis=0)
    regulariser = floor * floor * segment.size
    energy = float(np.sum(segment * segment)) + regulariser
    values = np.zeros(2 * m + 1, np.float64)
    for k, d in enumerate(range(-m, m + 1)):
        other = right[m + d : n - m + d].astype(np.float64)
        other -= other.mean(axis=0)
        denominator = np.sqrt(energy * (float(np.sum(other * other)) + regulariser))
        if denominator > 1e-12:
            values[k] = float(np.sum(segment * other)) / denominator
    return values


def peak(values: Float64Array, max_offset: int) -> tuple[int, float, float]:
    """The best offset of `correlate`'s values, its correlation and the confidence in it.

    Ties go to the offset nearest 0 (signals that do not correlate at all give offset 0).
    """
    offsets = np.arange(len(values)) - max_offset
    top = float(values.max())
    best = int(np.argmin(np.where(values >= top - 1e-12, np.abs(offsets), len(values))))
    distance = np.abs(np.arange(len(values)) - best)
    rivals = values[distance >= PEAK_HALF_WIDTH]
    second = max(float(rivals.max()), 0.0) if len(rivals) else 0.0
    on_edge = best in (0, len(values) - 1) and max_offset > 0
    confidence = 0.0 if top <= 0 or on_edge else min(1.0, max(0.0, 1.0 - second / top))
    return best - max_offset, top, confidence


def estimate_offset(
    left_path: Path,
    right_path: Path,
    rig: Rig,
    *,
    max_offset: int = DEFAULT_MAX_OFFSET,
    seconds: float = DEFAULT_SECONDS,
    width: int = DEFAULT_WIDTH,
) -> SyncEstimate:
    """Estimate how many frames apart two recordings of the rig are (see the module docstring).

    Args:
        left_path: The left camera's recording.
        right_path: The right camera's recording.
        rig: The rig that filmed them (cameras "left" and "right").
        max_offset: Largest offset searched, frames either way; a clip too short to search that
            far searches less (at least `MIN_SEGMENT_FRAMES` frames are always correlated).
        seconds: How much of the start of the recordings to use.
        width: Width to decode the frames at.

    Returns:
        The offset and the figures that say how far to trust it; offset 0 and confidence 0 when
        the cameras share no view or the clip is too short.

    Raises:
        av.FFmpegError: A recording cannot be opened or decoded.
    """
    sizes: dict[str, tuple[int, int]] = {}
    frames = 2
    for side, path in (("left", left_path), ("right", right_path)):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            context = stream.codec_context
            sizes[side] = decode_size(context.width, context.height, width)
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            frames = max(frames, round(seconds * float(rate)))
    area = overlap(rig, sizes)
    if area.n_cells == 0:
        return SyncEstimate(0, 0.0, 0.0, 0)
    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="sync-decode") as pool:
        futures = {
            side: pool.submit(motion_signal, path, area.maps[side], area, sizes[side], frames)
            for side, path in (("left", left_path), ("right", right_path))
        }
        left, right = futures["left"].result(), futures["right"].result()
    n = min(len(left), len(right))  # frame-to-frame changes: one fewer than frames decoded
    decoded = n + 1 if n else 0
    search = min(max_offset, (n - MIN_SEGMENT_FRAMES) // 2)
    if search < 1:
        return SyncEstimate(0, 0.0, 0.0, decoded)
    values = correlate(high_pass(left[:n]), high_pass(right[:n]), search)
    offset, correlation, confidence = peak(values, search)
    return SyncEstimate(offset, round(correlation, 4), round(confidence, 4), decoded)


def sync_check(estimate: SyncEstimate, *, warn_frames: int = SYNC_WARN_FRAMES) -> SyncCheck:
    """What ingest reports for an estimate: the offset to apply and the warning, if any.

    A reliable estimate is applied whatever its size; beyond ``warn_frames`` it is also a
    warning. An unreliable one keeps the recordings as they are (offset 0) and says so.
    """
    if not estimate.reliable:
        return SyncCheck(
            0,
            estimate.correlation,
            "could not check that left and right are in sync: no clear common motion where "
            f"the cameras overlap (correlation {estimate.correlation:.2f}, confidence "
            f"{estimate.confidence:.2f}); stitched as recorded",
            estimate,
        )
    offset = estimate.offset_frames
    warning = None
    if abs(offset) > warn_frames:
        started = "later" if offset < 0 else "earlier"
        warning = (
            f"left and right are {abs(offset)} frames apart (the right camera started "
            f"{abs(offset)} frames {started}; correlation {estimate.correlation:.2f}); "
            "stitching corrects it"
        )
    return SyncCheck(offset, estimate.correlation, warning, estimate)


def check_sync(left_path: Path, right_path: Path, rig_json: bytes | str) -> SyncCheck:
    """Estimate and judge a pair's synchronisation; never raises for a bad rig or recording.

    An unusable rig or a recording that cannot be decoded leaves the pair as recorded with a
    warning saying why it was not checked (the stages that need them report those problems).
    """
    try:
        rig = Rig.from_json(rig_json.decode() if isinstance(rig_json, bytes) else rig_json)
    except (RigError, ValueError, TypeError, KeyError) as exc:  # UnicodeDecodeError too
        return _unchecked(f"the rig is unusable ({exc})")
    try:
        estimate = estimate_offset(left_path, right_path, rig)
    except av.FFmpegError as exc:
        return _unchecked(f"a recording could not be decoded ({exc})")
    return sync_check(estimate)


def _unchecked(why: str) -> SyncCheck:
    return SyncCheck(
        0,
        None,
        f"could not check that left and right are in sync: {why}; stitched as recorded",
        None,
    )
