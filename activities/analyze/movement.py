"""Each identity's path on the pitch, cleaned and smoothed, and what a coach reads from it.

Tracked positions jitter by tens of centimetres from frame to frame and now and then jump (a
bad detection, a foot point on the wrong leg). Summed raw, the jitter alone adds half again to
the distance run. So, per identity (`activities.analyze.identities`):

1. **Outliers out.** A point further than ``outlier_m`` from the running median of its
   neighbours (``median_s`` seconds) is a bad measurement, not a player: it is dropped.
2. **Gaps bridged.** The path is resampled at every frame, linearly over gaps up to
   ``bridge_s`` (a player does not vanish: the straight line is the best guess, and its metres
   count); longer gaps cut the path into segments with no distance between them.
3. **Smoothed.** A Savitzky-Golay filter (quadratic, ``smooth_s`` window) per segment follows
   accelerating and turning players without the lag or corner cutting of a moving average; its
   first derivative is the speed.

From the smoothed path: distance covered, top speed, time per speed zone, sprints (above
`SPRINT_KMH` for at least `SPRINT_MIN_S`), and point counts on a 1 m grid of the pitch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import median_filter, uniform_filter1d
from scipy.signal import savgol_filter

from polyvision.geometry.pitch import PITCH_M

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

#: Speed zones, upper bounds in km/h (the last zone has none): walk, jog, run, high-speed
#: running, sprint; the usual bands of tracking-data providers.
ZONE_NAMES = ("walk", "jog", "run", "high", "sprint")
ZONE_UPPER_KMH = (7.0, 14.0, 20.0, 25.0)
SPRINT_KMH = 25.0
SPRINT_MIN_S = 1.0
#: Faster than any footballer runs; faster smoothed speeds are clipped.
MAX_SPEED_MPS = 11.0
#: The top speed is the highest speed held over this long (seconds).
TOP_SPEED_S = 1.0
#: Heatmap cell (metres): a 105 x 68 grid.
HEATMAP_CELL_M = 1.0


@dataclass(frozen=True)
class MovementSettings:
    """Tuning of `trajectory`.

    Attributes:
        median_s: Window of the running median that outliers are measured against.
        outlier_m: Distance from that median beyond which a point is dropped.
        bridge_s: Longest gap bridged by a straight line.
        smooth_s: Savitzky-Golay window.
    """

    median_s: float = 0.6
    outlier_m: float = 1.5
    bridge_s: float = 10.0
    smooth_s: float = 1.0


@dataclass(frozen=True)
class Trajectory:
    """One identity's cleaned path: a row per frame it covers.

    Attributes:
        frame: ``[N]`` frames, ascending; consecutive within a segment.
        xy: ``[N, 2]`` smoothed pitch metres.
        speed: ``[N]`` metres per second.
        segment: ``[N]`` segment number (a new one after each gap longer than ``bridge_s``).
    """

    frame: I64
    xy: F64
    speed: F64
    segment: I64

    def distance_m(self) -> float:
        """Metres covered: step lengths within segments."""
        if len(self.frame) < 2:
            return 0.0
        steps = np.hypot(*np.diff(self.xy, axis=0).T)
        same = np.diff(self.segment) == 0
        return float(steps[same].sum())


@dataclass(frozen=True)
class MovementFigures:
    """What a coach reads from one identity's path.

    Attributes:
        seconds: Time covered by the path.
        distance_m: Distance covered, metres.
        top_speed_mps: Highest speed, metres per second.
        zone_seconds: Seconds per speed zone, in `ZONE_NAMES` order.
        sprints: Runs above `SPRINT_KMH` lasting at least `SPRINT_MIN_S`.
    """

    seconds: float
    distance_m: float
    top_speed_mps: float
    zone_seconds: tuple[float, ...]
    sprints: int


def _odd_window(seconds: float, fps: float, length: int) -> int:
    window = min(round(seconds * fps), length)
    return window - 1 if window % 2 == 0 else window


def trajectory(
    frame: npt.ArrayLike,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    fps: float,
    settings: MovementSettings | None = None,
) -> Trajectory:
    """One identity's cleaned, bridged and smoothed path (see the module docstring).

    Args:
        frame: Frame of each point; a frame given twice (two merged tracks) is averaged.
        x: Pitch x (metres); NaN points are ignored.
        y: Pitch y (metres).
        fps: Frames per second.
        settings: Tuning; the defaults when None.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    s = settings or MovementSettings()
    frames = np.asarray(frame, dtype=np.int64)
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(xs) & np.isfinite(ys)
    frames, xs, ys = frames[ok], xs[ok], ys[ok]
    empty = Trajectory(np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros(0), np.zeros(0, np.int64))
    if frames.size == 0:
        return empty
    unique, inverse = np.unique(frames, return_inverse=True)
    counts = np.bincount(inverse)
    xy = np.column_stack(
        [np.bincount(inverse, weights=xs) / counts, np.bincount(inverse, weights=ys) / counts]
    )
    xy, unique = _drop_outliers(xy, unique, fps, s)
    if unique.size == 0:
        return empty
    cuts = np.flatnonzero(np.diff(unique) > s.bridge_s * fps) + 1
    out_frames, out_xy, out_speed, out_segment = [], [], [], []
    for number, piece in enumerate(np.split(np.arange(unique.size), cuts)):
        f = unique[piece]
        full = np.arange(f[0], f[-1] + 1)
        path = np.column_stack([np.interp(full, f, xy[piece, 0]), np.interp(full, f, xy[piece, 1])])
        smoothed, speed = _smooth(path, fps, s.smooth_s)
        out_frames.append(full)
        out_xy.append(smoothed)
        out_speed.append(speed)
        out_segment.append(np.full(full.size, number, np.int64))
    return Trajectory(
        frame=np.concatenate(out_frames),
        xy=np.concatenate(out_xy),
        speed=np.concatenate(out_speed),
        segment=np.concatenate(out_segment),
    )


def _drop_outliers(xy: F64, frames: I64, fps: float, s: MovementSettings) -> tuple[F64, I64]:
    window = max(_odd_window(s.median_s, fps, len(frames)), 1)
    if window < 3:
        return xy, frames
    median = median_filter(xy, size=(window, 1), mode="nearest")
    keep = np.hypot(*(xy - median).T) <= s.outlier_m
    return xy[keep], frames[keep]


def _smooth(path: F64, fps: float, smooth_s: float) -> tuple[F64, F64]:
    """Savitzky-Golay positions and speeds of an evenly sampled path."""
    window = _odd_window(smooth_s, fps, len(path))
    if window < 5:
        # Too short for a quadratic to average anything: the measurements, finite differences.
        if len(path) < 2:
            return path, np.zeros(len(path))
        velocity = np.gradient(path, axis=0) * fps
        return path, np.minimum(np.hypot(*velocity.T), MAX_SPEED_MPS)
    smoothed = np.asarray(savgol_filter(path, window, 2, axis=0, mode="interp"), np.float64)
    velocity = np.asarray(
        savgol_filter(path, window, 2, deriv=1, delta=1.0 / fps, axis=0, mode="interp"),
        np.float64,
    )
    return smoothed, np.minimum(np.hypot(*velocity.T), MAX_SPEED_MPS)


def sustained_speed(path: Trajectory, fps: float, window_s: float = TOP_SPEED_S) -> F64:
    """Speed averaged over ``window_s`` within each segment: the top speed is read from it, so
    that one noisy frame is not a record."""
    out = np.zeros(len(path.speed))
    for segment in np.unique(path.segment):
        mine = np.flatnonzero(path.segment == segment)
        size = max(1, min(round(window_s * fps), mine.size))
        out[mine] = uniform_filter1d(path.speed[mine], size, mode="nearest")
    return out


def movement_figures(path: Trajectory, fps: float) -> MovementFigures:
    """Distance, top speed, time per speed zone and sprints of one path."""
    kmh = path.speed * 3.6
    zone = np.searchsorted(np.asarray(ZONE_UPPER_KMH), kmh, side="right")
    zone_frames = np.bincount(zone, minlength=len(ZONE_NAMES))
    return MovementFigures(
        seconds=len(path.frame) / fps,
        distance_m=path.distance_m(),
        top_speed_mps=float(sustained_speed(path, fps).max()) if len(path.speed) else 0.0,
        zone_seconds=tuple(float(n) / fps for n in zone_frames),
        sprints=count_sprints(path.frame, path.speed, fps),
    )


def count_sprints(
    frame: npt.ArrayLike,
    speed: npt.ArrayLike,
    fps: float,
    threshold_kmh: float = SPRINT_KMH,
    min_s: float = SPRINT_MIN_S,
) -> int:
    """Runs of consecutive frames above ``threshold_kmh`` lasting at least ``min_s``."""
    frames = np.asarray(frame, dtype=np.int64)
    fast = np.asarray(speed, dtype=np.float64) * 3.6 > threshold_kmh
    if fast.size == 0:
        return 0
    breaks = np.flatnonzero((fast[:-1] != fast[1:]) | (np.diff(frames) != 1)) + 1
    count = 0
    for piece in np.split(np.arange(fast.size), breaks):
        if fast[piece[0]] and piece.size / fps >= min_s:
            count += 1
    return count


def grid_shape(cell_m: float = HEATMAP_CELL_M) -> tuple[int, int]:
    """Cells along x and y of the pitch grid (the last cell may be partial)."""
    return (int(np.ceil(PITCH_M[0] / cell_m - 1e-9)), int(np.ceil(PITCH_M[1] / cell_m - 1e-9)))


def cell_index(xy: F64, cell_m: float = HEATMAP_CELL_M) -> tuple[I64, I64]:
    """Grid cell of each position; positions off the pitch count in the nearest edge cell."""
    nx, ny = grid_shape(cell_m)
    ix = np.clip(np.floor(xy[:, 0] / cell_m), 0, nx - 1).astype(np.int64)
    iy = np.clip(np.floor(xy[:, 1] / cell_m), 0, ny - 1).astype(np.int64)
    return ix, iy


def heatmap(xy: F64, cell_m: float = HEATMAP_CELL_M) -> I64:
    """Point counts per cell, indexed ``[ix, iy]`` (x along the pitch's length)."""
    nx, ny = grid_shape(cell_m)
    ix, iy = cell_index(xy, cell_m)
    return np.bincount(ix * ny + iy, minlength=nx * ny).reshape(nx, ny).astype(np.int64)
