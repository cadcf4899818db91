"""Per-track movement metrics from track points in pitch metres: distance, speed, heatmaps.

Positions from detection and homography jitter by a few tens of centimetres from frame to
frame. Summed naively, that jitter dominates: at 25 fps a player jogging at 5 m/s moves 0.2 m
a frame, about as much as the noise, so raw step lengths can overstate distance by half or
more. Two things keep the numbers honest:

* **Jumps split a track.** A step longer than the maximum running speed allows (plus an
  allowance for the jitter itself) is an identity switch or a bad detection, not running:
  it is not counted, and the track is cut into separate *runs* there so that smoothing does
  not drag positions across the jump. A gap of more than ``max_gap_s`` without the track
  also cuts it (distance over an unseen gap is unknown).
* **Positions are smoothed per run** with a Savitzky-Golay filter (quadratic, window of
  ``smooth_s`` seconds) before step lengths and speeds are taken. A quadratic follows
  accelerating and turning players without the lag or corner-cutting of a plain moving
  average, while averaging the jitter over the window.

All functions take flat per-point arrays (one entry per track per frame, any order), as the
``track_points`` table stores them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import savgol_filter

from activities.analyze.contracts import CELL_M
from polyvision.geometry.pitch import PITCH_M

#: Faster than any footballer sprints (the fastest recorded are about 10.5 m/s).
MAX_SPEED_MPS = 12.0
#: Step length allowed on top of the speed limit for position jitter (metres).
JUMP_TOLERANCE_M = 1.0
#: Longest gap without the track that is still bridged (seconds).
MAX_GAP_S = 0.5
#: Savitzky-Golay window (seconds).
SMOOTH_S = 1.0

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Run:
    """One uninterrupted stretch of a track: indices into the input arrays, by frame."""

    track_id: int
    index: npt.NDArray[np.intp]
    times: FloatArray  # seconds
    xy: FloatArray  # smoothed positions, shape (n, 2)


def distance_per_track(
    frame: npt.ArrayLike,
    track_id: npt.ArrayLike,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    fps: float,
    max_speed_mps: float = MAX_SPEED_MPS,
    *,
    smooth_s: float = SMOOTH_S,
    max_gap_s: float = MAX_GAP_S,
    jump_tolerance_m: float = JUMP_TOLERANCE_M,
) -> dict[int, float]:
    """Distance covered by each track, in metres.

    The sum of the step lengths between consecutive smoothed positions of each run (see the
    module docstring): jumps beyond ``max_speed_mps`` (identity switches, noise) and gaps
    longer than ``max_gap_s`` are not counted.

    Args:
        frame: Frame number of each point.
        track_id: Track of each point.
        x: Pitch x of each point (metres along the length); NaN points are ignored.
        y: Pitch y of each point (metres across).
        fps: Frames per second of ``frame``.
        max_speed_mps: Fastest plausible movement; faster steps are jumps.
        smooth_s: Smoothing window in seconds (0 or less: no smoothing).
        max_gap_s: Longest gap in a track that is still bridged.
        jump_tolerance_m: Extra step length allowed for jitter before a step is a jump.

    Returns:
        Track id to metres, for every track with at least one valid point.
    """
    totals: dict[int, float] = {}
    for run in _runs(
        frame, track_id, x, y, fps, max_speed_mps, smooth_s, max_gap_s, jump_tolerance_m
    ):
        steps = np.hypot(*np.diff(run.xy, axis=0).T)
        # Smoothing cannot create a jump, but guard anyway: a step the speed limit forbids
        # is never distance run.
        allowed = steps <= max_speed_mps * np.diff(run.times) + 1e-9
        totals[run.track_id] = totals.get(run.track_id, 0.0) + float(steps[allowed].sum())
    return totals


def speeds(
    frame: npt.ArrayLike,
    track_id: npt.ArrayLike,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    fps: float,
    max_speed_mps: float = MAX_SPEED_MPS,
    *,
    smooth_s: float = SMOOTH_S,
    max_gap_s: float = MAX_GAP_S,
    jump_tolerance_m: float = JUMP_TOLERANCE_M,
) -> FloatArray:
    """Smoothed speed at each point, in metres per second (the ``track_points.speed`` column).

    Central differences of the smoothed positions within each run (one-sided at a run's
    ends), clipped to ``max_speed_mps``. A point alone in its run, or with NaN coordinates,
    gets 0.

    Args:
        frame: Frame number of each point.
        track_id: Track of each point.
        x: Pitch x of each point (metres).
        y: Pitch y of each point (metres).
        fps: Frames per second of ``frame``.
        max_speed_mps: Fastest plausible movement; faster steps are jumps.
        smooth_s: Smoothing window in seconds.
        max_gap_s: Longest gap in a track that is still bridged.
        jump_tolerance_m: Extra step length allowed for jitter before a step is a jump.

    Returns:
        One speed per input point, in input order.
    """
    out = np.zeros(np.asarray(frame).shape[0], dtype=np.float64)
    for run in _runs(
        frame, track_id, x, y, fps, max_speed_mps, smooth_s, max_gap_s, jump_tolerance_m
    ):
        if len(run.index) < 2:
            continue
        vx = np.gradient(run.xy[:, 0], run.times)
        vy = np.gradient(run.xy[:, 1], run.times)
        out[run.index] = np.minimum(np.hypot(vx, vy), max_speed_mps)
    return out


def heatmap_grid(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    team: npt.ArrayLike,
    pitch: tuple[float, float] = PITCH_M,
    cell_m: tuple[float, float] = CELL_M,
) -> dict[int, npt.NDArray[np.int64]]:
    """Point counts per pitch cell, per team.

    Points slightly off the pitch (players do run over the lines, and the homography is not
    exact at the edges) count in the nearest edge cell; NaN points (no homography) are left
    out.

    Args:
        x: Pitch x of each point (metres along the length, 0 to ``pitch[0]``).
        y: Pitch y of each point (metres across, 0 to ``pitch[1]``).
        team: Team of each point (0, 1; -1 unknown, referee or ball).
        pitch: Pitch length and width in metres.
        cell_m: Cell length and width in metres (the default gives 20 x 16 cells).

    Returns:
        Team to an ``int64`` array of shape ``(cells along x, cells along y)``, indexed
        ``[ix, iy]``, for every team present.
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    teams = np.asarray(team)
    nx = round(pitch[0] / cell_m[0])
    ny = round(pitch[1] / cell_m[1])
    valid = np.isfinite(xs) & np.isfinite(ys)
    # histogram2d's last bin includes its right edge, so clipping to the bounds puts
    # off-pitch points into the edge cells instead of dropping them.
    xs = np.clip(xs[valid], 0.0, pitch[0])
    ys = np.clip(ys[valid], 0.0, pitch[1])
    teams = teams[valid]
    edges = (np.linspace(0.0, pitch[0], nx + 1), np.linspace(0.0, pitch[1], ny + 1))
    grids: dict[int, npt.NDArray[np.int64]] = {}
    for value in np.unique(teams):
        mine = teams == value
        counts, _, _ = np.histogram2d(xs[mine], ys[mine], bins=edges)
        grids[int(value)] = counts.astype(np.int64)
    return grids


def _runs(
    frame: npt.ArrayLike,
    track_id: npt.ArrayLike,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    fps: float,
    max_speed_mps: float,
    smooth_s: float,
    max_gap_s: float,
    jump_tolerance_m: float,
) -> Iterator[_Run]:
    """Split points into runs (per track, by frame, cut at gaps and jumps), smoothed."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    frames = np.asarray(frame, dtype=np.int64)
    tracks = np.asarray(track_id, dtype=np.int64)
    xy = np.stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)], axis=1)
    if not (frames.shape[0] == tracks.shape[0] == xy.shape[0]):
        raise ValueError("frame, track_id, x and y must have the same length")
    valid = np.flatnonzero(np.isfinite(xy).all(axis=1))
    # Sort by (track, frame) once; each track is then one contiguous block.
    order = valid[np.lexsort((frames[valid], tracks[valid]))]
    if order.size == 0:
        return
    track_starts = np.flatnonzero(np.diff(tracks[order])) + 1
    for block in np.split(order, track_starts):
        times = frames[block] / fps
        dt = np.diff(times)
        steps = np.hypot(*np.diff(xy[block], axis=0).T)
        cut = (dt > max_gap_s) | (dt <= 0) | (steps > max_speed_mps * dt + jump_tolerance_m)
        for piece in np.split(np.arange(block.size), np.flatnonzero(cut) + 1):
            index = block[piece]
            yield _Run(
                track_id=int(tracks[index[0]]),
                index=index,
                times=times[piece],
                xy=_smooth(xy[index], round(smooth_s * fps)),
            )


def _smooth(xy: FloatArray, window: int) -> FloatArray:
    """Savitzky-Golay (quadratic) smoothing of positions, window shrunk to fit short runs.

    The filter assumes evenly spaced samples; the few missed frames a run may bridge (up to
    ``max_gap_s``) bend that assumption by a frame or two, which is well inside the jitter.
    """
    window = min(window, xy.shape[0])
    if window % 2 == 0:
        window -= 1  # savgol_filter wants an odd window
    if window < 5:
        # Too short for a quadratic to average anything out: keep the measurements.
        return xy
    smoothed: Any = savgol_filter(xy, window, polyorder=2, axis=0, mode="interp")
    return np.asarray(smoothed, dtype=np.float64)
