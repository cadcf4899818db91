"""The virtual camera's path: where a broadcast-style view window looks, frame by frame.

Everything here works in **panorama pixels** (x right, y down, origin at the panorama's top-left
corner), so the planner needs nothing from the stitcher but the panorama's size; the pitch only
comes in through :func:`ground_quad`, with a mapping the caller provides.

The "Centered" mode (:func:`plan_centered`) aims at a robust centroid of the tracked players,
pulled towards the ball when it is known, and zooms so that most players fit. A human camera
operator neither jitters nor whips the camera around, so the raw per-frame aim goes through an
offline (non-causal, the plan is made for the whole match at once) smoothing chain:

1. **Hold**: frames without any detection keep the previous aim (the first known aim is used
   before it).
2. **Gaussian** (zero phase) over ``smooth_sigma_s``: removes detection noise and track
   flicker.
3. **Dead zone** with hysteresis: the aim holds still until the target leaves a band around
   it, then follows the target until the target comes to rest, and holds again, centred on it.
   Small drifts of the play leave the camera still, and a move ends on the play rather than at
   the band's edge. The operator is run forwards and backwards in time and the two results
   mixed by ``lookahead`` (the forward pass reacts late like a live operator, the backward one
   anticipates).
4. **Speed and acceleration limit**: a follower with bounded velocity and acceleration
   (a proportional approach that switches to a braking curve for large errors, with the
   reference's own velocity fed forward so it tracks a feasible reference exactly), again run
   forwards and backwards and mixed by ``lookahead``. A convex mix of two bounded trajectories
   is bounded by the same limits.
5. **Gaussian** over ``final_sigma_s``: rounds the corners the limiter leaves (bounded jerk).
   A non-negative kernel that sums to one keeps the velocity and acceleration bounds (the ends
   are extended by point reflection so that holds there too).

While the play drifts slower than ``stop_speed`` the camera holds and then re-frames by a
band-width at a time, as an operator nudges the head.

Zoom is smoothed the same way in log-width, so zooming in and out by the same factor takes the
same time. The pan target is clamped so the window stays inside the panorama before the pan is
smoothed; a last hard clip (only active where rounding pushes it over an edge) guarantees it.

A path is stored as an Arrow table (``frame: int32, cx, cy, width: float32``, see
:meth:`VcamPath.to_table`), the project's format for per-frame tabular data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy.ndimage import gaussian_filter1d

__all__ = [
    "ASPECT",
    "FramePoints",
    "VcamParams",
    "VcamPath",
    "ground_quad",
    "ground_quads",
    "plan_centered",
    "window_corners",
    "window_corners_all",
]

ASPECT = 16.0 / 9.0
"""Width over height of every view window (and of the rendered view)."""

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]

PATH_SCHEMA = pa.schema(
    [
        ("frame", pa.int32()),
        ("cx", pa.float32()),
        ("cy", pa.float32()),
        ("width", pa.float32()),
    ]
)
"""Arrow schema of :meth:`VcamPath.to_table`: one row per frame, frames ``0 .. F-1``."""


@dataclass(frozen=True, eq=False)
class FramePoints:
    """Points in panorama pixels tagged with the frame they belong to (a flat, ragged layout).

    Attributes:
        frame: int32 ``[N]`` frame index of each point, ``>= 0``, any order.
        xy: float32 ``[N, 2]`` panorama pixel positions (``x, y``), e.g. players' foot points.

    Invalid shapes, negative frames or non-finite positions raise ``ValueError``.
    """

    frame: npt.NDArray[np.int32]
    xy: npt.NDArray[np.float32]

    def __post_init__(self) -> None:
        # frozen=True forbids plain assignment; object.__setattr__ is the documented way for a
        # frozen dataclass to normalise its own fields during construction.
        frame = np.asarray(self.frame)
        xy = np.asarray(self.xy, dtype=np.float32)
        if xy.size == 0:
            xy = xy.reshape(0, 2)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"xy must have shape [N, 2], got {xy.shape}")
        if frame.shape != (xy.shape[0],):
            raise ValueError(f"frame must have shape [{xy.shape[0]}], got {frame.shape}")
        frame32 = frame.astype(np.int32)
        if not np.array_equal(frame32, frame):
            raise ValueError("frame must hold integers that fit in int32")
        if frame32.size and frame32.min() < 0:
            raise ValueError("frame must be >= 0")
        if not np.isfinite(xy).all():
            raise ValueError("xy must be finite")
        object.__setattr__(self, "frame", frame32)
        object.__setattr__(self, "xy", xy)

    @classmethod
    def from_rows(cls, rows: npt.ArrayLike) -> FramePoints:
        """Build from a ``[N, 3]`` array of ``(frame, x, y)`` rows."""
        arr = np.asarray(rows, dtype=np.float64)
        if arr.size == 0:
            arr = arr.reshape(0, 3)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise ValueError(f"rows must have shape [N, 3], got {arr.shape}")
        frame = arr[:, 0]
        if not np.array_equal(frame, np.round(frame)):
            raise ValueError("the frame column must hold integers")
        return cls(frame.astype(np.int32), arr[:, 1:].astype(np.float32))

    @classmethod
    def from_per_frame(cls, per_frame: Sequence[npt.ArrayLike | None]) -> FramePoints:
        """Build from one ``[M_f, 2]`` array (``None`` or empty: no points) per frame."""
        frames: list[npt.NDArray[np.int32]] = []
        points: list[Float32Array] = []
        for f, pts in enumerate(per_frame):
            if pts is None:
                continue
            arr = np.asarray(pts, dtype=np.float32)
            if arr.size == 0:
                continue
            arr = arr.reshape(-1, 2)
            frames.append(np.full(arr.shape[0], f, np.int32))
            points.append(arr)
        if not frames:
            return cls(np.zeros(0, np.int32), np.zeros((0, 2), np.float32))
        return cls(np.concatenate(frames), np.concatenate(points))


@dataclass(frozen=True)
class VcamParams:
    """Tuning of the "Centered" virtual camera.

    Spatial quantities are fractions of the panorama width (so the defaults suit any panorama
    size); times are seconds, converted to frames with the plan's ``fps``.

    Attributes:
        min_width: Narrowest window (most zoomed in), fraction of the panorama width.
        max_width: Widest window, fraction of the panorama width; the window is also never
            taller than the panorama.
        trim: Fraction of players cut from each end (per axis) before averaging the aim: a
            trimmed mean ignores a goalkeeper or a stray false track at the far end.
        ball_weight: Weight of the ball in the aim when it is known (``0``: players only).
        spread_quantile: The window spans players between this quantile and its complement
            (``0.1``: the middle 80 % per axis), so one outlier does not zoom out the view.
        margin: Extra room around that spread, as a fraction of the half-extent.
        smooth_sigma_s: Gaussian smoothing of the raw aim and zoom, seconds.
        pan_deadzone: Half-width of the pan dead zone, fraction of the current window size
            (width for x, height for y).
        zoom_deadzone: Half-width of the zoom dead zone in natural-log width (0.1: about 10 %).
        stop_speed: The camera stops following once the (smoothed) target moves slower than
            this many dead-zone half-widths per second.
        pan_speed_max: Largest pan/tilt speed, panorama widths per second.
        pan_accel_max: Largest pan/tilt acceleration, panorama widths per second squared.
        zoom_speed_max: Largest zoom rate, natural-log width per second.
        zoom_accel_max: Largest zoom acceleration, natural-log width per second squared.
        settle_s: Time constant with which the follower closes small errors.
        lookahead: Share of the time-reversed pass in the dead zone and the limiter. ``0`` is a
            causal camera that reacts late like a live operator; ``0.5`` is symmetric and
            starts a pan as much before the play moves as it would otherwise end after. In
            between, the camera mostly reacts but eases into moves it "sees coming".
        final_sigma_s: Gaussian smoothing after the limiter (rounds its corners), seconds.
    """

    min_width: float = 0.3
    max_width: float = 1.0
    trim: float = 0.2
    ball_weight: float = 0.5
    spread_quantile: float = 0.1
    margin: float = 0.25
    smooth_sigma_s: float = 0.5
    pan_deadzone: float = 0.04
    zoom_deadzone: float = 0.08
    stop_speed: float = 0.1
    pan_speed_max: float = 0.25
    pan_accel_max: float = 0.3
    zoom_speed_max: float = 0.4
    zoom_accel_max: float = 0.8
    settle_s: float = 0.4
    lookahead: float = 0.25
    final_sigma_s: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.min_width <= self.max_width:
            raise ValueError("need 0 < min_width <= max_width")
        if not 0 <= self.trim < 0.5:
            raise ValueError("trim must be in [0, 0.5)")
        if not 0 <= self.ball_weight <= 1:
            raise ValueError("ball_weight must be in [0, 1]")
        if not 0 <= self.lookahead <= 1:
            raise ValueError("lookahead must be in [0, 1]")
        if not 0 <= self.spread_quantile < 0.5:
            raise ValueError("spread_quantile must be in [0, 0.5)")
        positive = ("pan_speed_max", "pan_accel_max", "zoom_speed_max", "zoom_accel_max")
        for name in (*positive, "settle_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        nonnegative = ("margin", "smooth_sigma_s", "pan_deadzone", "zoom_deadzone", "final_sigma_s")
        for name in (*nonnegative, "stop_speed"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


@dataclass(frozen=True, eq=False)
class VcamPath:
    """The view window for every frame, in panorama pixels; height is ``width / ASPECT``.

    Attributes:
        cx: float32 ``[F]`` window centre x.
        cy: float32 ``[F]`` window centre y.
        width: float32 ``[F]`` window width, ``> 0``.
    """

    cx: Float32Array
    cy: Float32Array
    width: Float32Array

    def __post_init__(self) -> None:
        # Normalise to float32 once so every consumer (renderer, table writer) can trust dtypes.
        cx = np.asarray(self.cx, dtype=np.float32).reshape(-1)
        cy = np.asarray(self.cy, dtype=np.float32).reshape(-1)
        width = np.asarray(self.width, dtype=np.float32).reshape(-1)
        if not cx.shape == cy.shape == width.shape:
            raise ValueError(
                f"cx, cy, width differ in length: {cx.shape}, {cy.shape}, {width.shape}"
            )
        if not (np.isfinite(cx).all() and np.isfinite(cy).all() and np.isfinite(width).all()):
            raise ValueError("path values must be finite")
        if width.size and width.min() <= 0:
            raise ValueError("width must be > 0")
        object.__setattr__(self, "cx", cx)
        object.__setattr__(self, "cy", cy)
        object.__setattr__(self, "width", width)

    @property
    def frames(self) -> int:
        """Number of frames the path covers."""
        return int(self.cx.shape[0])

    @property
    def height(self) -> Float32Array:
        """float32 ``[F]`` window heights (``width / ASPECT``)."""
        return (self.width / np.float32(ASPECT)).astype(np.float32)

    def to_table(self) -> pa.Table:
        """The path as an Arrow table with :data:`PATH_SCHEMA` (write with ``pyarrow.parquet``)."""
        columns = [np.arange(self.frames, dtype=np.int32), self.cx, self.cy, self.width]
        return pa.Table.from_arrays(
            [pa.array(c, f.type) for c, f in zip(columns, PATH_SCHEMA, strict=True)],
            schema=PATH_SCHEMA,
        )

    @classmethod
    def from_table(cls, table: pa.Table) -> VcamPath:
        """Read a table written by :meth:`to_table` (rows in any order, frames ``0 .. F-1``)."""
        missing = [n for n in PATH_SCHEMA.names if n not in table.column_names]
        if missing:
            raise ValueError(f"vcam path table lacks columns {missing}")
        frame = table.column("frame").to_numpy()
        order = np.argsort(frame, kind="stable")
        if not np.array_equal(frame[order], np.arange(frame.shape[0])):
            raise ValueError("vcam path table must hold each frame 0 .. F-1 exactly once")

        def col(name: str) -> Float32Array:
            return np.asarray(table.column(name).to_numpy(), dtype=np.float32)[order]

        return cls(col("cx"), col("cy"), col("width"))


def window_corners_all(path: VcamPath) -> Float32Array:
    """float32 ``[F, 4, 2]`` window corners: top-left, top-right, bottom-right, bottom-left."""
    hw = path.width / 2
    hh = path.height / 2
    xs = np.stack([path.cx - hw, path.cx + hw, path.cx + hw, path.cx - hw], axis=1)
    ys = np.stack([path.cy - hh, path.cy - hh, path.cy + hh, path.cy + hh], axis=1)
    return np.stack([xs, ys], axis=-1).astype(np.float32)


def window_corners(path: VcamPath, frame: int) -> Float32Array:
    """float32 ``[4, 2]`` panorama-pixel corners of ``frame``'s window.

    Order: top-left, top-right, bottom-right, bottom-left (clockwise on screen), the order
    ``vcam.parquet`` quads need ("in order around the quad").
    """
    if not 0 <= frame < path.frames:
        raise IndexError(f"frame {frame} outside the path's {path.frames} frames")
    cx, cy = float(path.cx[frame]), float(path.cy[frame])
    hw = float(path.width[frame]) / 2
    hh = hw / ASPECT
    return np.array(
        [[cx - hw, cy - hh], [cx + hw, cy - hh], [cx + hw, cy + hh], [cx - hw, cy + hh]],
        dtype=np.float32,
    )


PanoramaToPitch = Callable[[npt.NDArray[np.floating]], npt.NDArray[np.floating]]
"""Maps ``[N, 2]`` panorama pixels to ``[N, 2]`` (or ``[N, 3]``, ``z`` ignored) pitch metres."""


def _to_pitch(corners: Float32Array, panorama_to_pitch: PanoramaToPitch) -> Float32Array:
    mapped = np.asarray(panorama_to_pitch(corners.astype(np.float64)), dtype=np.float64)
    if mapped.ndim != 2 or mapped.shape[0] != corners.shape[0] or mapped.shape[1] < 2:
        raise ValueError(f"panorama_to_pitch returned shape {mapped.shape}, expected [N, 2|3]")
    return mapped[:, :2].astype(np.float32)


def ground_quad(path: VcamPath, frame: int, panorama_to_pitch: PanoramaToPitch) -> Float32Array:
    """float32 ``[4, 2]`` pitch-metre quad of ``frame``'s window (corners as in
    :func:`window_corners`), mapped through the caller's ``panorama_to_pitch``.

    The mapping is applied to the corners only, which is exact for a projective panorama and a
    close approximation for a cylindrical one at view-window scale. Corners above the horizon
    have no ground point: whatever the mapping returns for them (possibly non-finite) is
    passed through, so the caller's mapping decides how to treat them.
    """
    return _to_pitch(window_corners(path, frame), panorama_to_pitch)


def ground_quads(path: VcamPath, panorama_to_pitch: PanoramaToPitch) -> Float32Array:
    """float32 ``[F, 4, 2]`` :func:`ground_quad` for every frame with one mapping call."""
    corners = window_corners_all(path).reshape(-1, 2)
    return _to_pitch(corners, panorama_to_pitch).reshape(-1, 4, 2)


# --- per-frame raw aim -------------------------------------------------------------------------


def _as_points(points: FramePoints | Sequence[npt.ArrayLike | None]) -> FramePoints:
    return points if isinstance(points, FramePoints) else FramePoints.from_per_frame(points)


@dataclass(frozen=True)
class _FrameStats:
    count: npt.NDArray[np.int64]  # [F] points per frame
    trimmed_mean: FloatArray  # [F] NaN where count == 0
    q_lo: FloatArray  # [F]
    q_hi: FloatArray  # [F]


def _axis_stats(
    frame: npt.NDArray[np.int32], v: FloatArray, frames: int, p: VcamParams
) -> _FrameStats:
    """Per-frame trimmed mean and quantiles of one coordinate, without a per-frame Python loop.

    Sorting by (frame, value) puts each frame's values in a sorted run, so order statistics are
    plain gathers at ``start + rank``; no padding to the largest frame is needed, which keeps
    memory flat even when one frame is full of false detections.
    """
    order = np.lexsort((v, frame))
    fs, vs = frame[order], v[order]
    count = np.bincount(fs, minlength=frames).astype(np.int64)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    rank = np.arange(fs.shape[0]) - start[fs]
    n = count[fs]
    cut = np.floor(p.trim * n).astype(np.int64)
    keep = (rank >= cut) & (rank < n - cut)
    kept = np.bincount(fs, weights=keep.astype(np.float64), minlength=frames)
    total = np.bincount(fs, weights=np.where(keep, vs, 0.0), minlength=frames)
    has = count > 0
    mean = np.full(frames, np.nan)
    mean[has] = total[has] / kept[has]

    def quantile(q: float) -> FloatArray:
        out = np.full(frames, np.nan)
        pos = q * (count[has] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, count[has] - 1)
        frac = pos - lo
        base = start[has]
        out[has] = vs[base + lo] * (1 - frac) + vs[base + hi] * frac
        return out

    return _FrameStats(count, mean, quantile(p.spread_quantile), quantile(1 - p.spread_quantile))


def _ball_per_frame(ball: FramePoints, frames: int) -> tuple[FloatArray, FloatArray]:
    """Mean ball position per frame (NaN where unknown); several candidates are averaged."""
    count = np.bincount(ball.frame, minlength=frames)[:frames]
    bx = np.bincount(ball.frame, weights=ball.xy[:, 0], minlength=frames)[:frames]
    by = np.bincount(ball.frame, weights=ball.xy[:, 1], minlength=frames)[:frames]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, bx / count, np.nan), np.where(count > 0, by / count, np.nan)


def _hold(values: FloatArray, default: float) -> FloatArray:
    """Fill NaNs with the last known value (the first known one before it; ``default`` if none)."""
    known = ~np.isnan(values)
    if not known.any():
        return np.full_like(values, default)
    idx = np.where(known, np.arange(values.shape[0]), 0)
    np.maximum.accumulate(idx, out=idx)
    out = values[idx]
    first = int(np.argmax(known))
    out[:first] = values[first]
    return out


# --- smoothing ---------------------------------------------------------------------------------


def _gauss(values: FloatArray, sigma_frames: float) -> FloatArray:
    if sigma_frames <= 0 or values.shape[0] < 2:
        return values.copy()
    # "nearest" extends the ends flat, so the filter neither pulls the ends towards zero nor
    # adds speed at the boundaries.
    return np.asarray(gaussian_filter1d(values, sigma_frames, mode="nearest"), dtype=np.float64)


def _gauss_odd(values: FloatArray, sigma_frames: float) -> FloatArray:
    """Gaussian with the ends extended by point reflection (``2 x[0] - x[k]``).

    Used after the limiter: a flat extension would stop a camera that is still panning at the
    last frame within the kernel's width (an acceleration above the limit), whereas a point
    reflection continues the motion with the same velocity and mirrored acceleration, so the
    filtered path keeps the limiter's bounds up to the ends.
    """
    n = values.shape[0]
    if sigma_frames <= 0 or n < 2:
        return values.copy()
    pad = min(n - 1, math.ceil(4 * sigma_frames))
    head = 2 * values[0] - values[pad:0:-1]
    tail = 2 * values[-1] - values[-2 : -pad - 2 : -1]
    padded = np.concatenate([head, values, tail])
    out = gaussian_filter1d(padded, sigma_frames, mode="nearest", truncate=4.0)
    return np.asarray(out[pad : pad + n], dtype=np.float64)


def _hysteresis(target: FloatArray, half_band: FloatArray, stop_step: FloatArray) -> FloatArray:
    out = np.empty_like(target)
    aim = prev = float(target[0])
    tracking = False
    for i in range(target.shape[0]):
        t = float(target[i])
        if tracking:
            aim = t
            # The play has come to rest: hold here (centred on it, not at the band's edge).
            tracking = abs(t - prev) >= float(stop_step[i])
        elif abs(t - aim) > float(half_band[i]):
            # The play left the band: follow it (the jump of one band-width is smoothed out by
            # the filters and the limiter that come after).
            tracking = True
            aim = t
        out[i] = aim
        prev = t
    return out


def _deadzone(
    target: FloatArray, half_band: FloatArray, stop_step: FloatArray, lookahead: float
) -> FloatArray:
    """Dead zone run forwards and backwards in time, mixed ``1 - lookahead : lookahead``."""
    if target.shape[0] == 0:
        return target.copy()
    forward = _hysteresis(target, half_band, stop_step)
    if lookahead == 0:
        return forward
    backward = _hysteresis(target[::-1], half_band[::-1], stop_step[::-1])[::-1]
    return (1 - lookahead) * forward + lookahead * backward


def _follow(ref: FloatArray, vmax: float, amax: float, dt: float, settle: float) -> FloatArray:
    """Causal tracker of ``ref`` with ``|velocity| <= vmax`` and ``|acceleration| <= amax``."""
    out = np.empty_like(ref)
    p, v = float(ref[0]), 0.0
    dv = amax * dt
    # Keep the linear (proportional) region at least a few frames long: a gain near 1/dt would
    # make the discrete loop ring.
    settle = max(settle, 3 * dt)
    prev_r = float(ref[0])
    for i in range(ref.shape[0]):
        r = float(ref[i])
        v_ref = (r - prev_r) / dt
        e = prev_r - p
        # Proportional for small errors, the constant-deceleration braking curve for large ones,
        # so a long pan stops without overshoot.
        mag = min(abs(e) / settle, math.sqrt(2 * amax * abs(e)))
        v_des = min(max(v_ref + math.copysign(mag, e), -vmax), vmax)
        v += min(max(v_des - v, -dv), dv)
        p += v * dt
        out[i] = p
        prev_r = r
    return out


def _limit(
    ref: FloatArray, vmax: float, amax: float, dt: float, settle: float, lookahead: float
) -> FloatArray:
    """Speed/acceleration limit: forward and backward followers mixed as in :func:`_deadzone`.

    Any convex mix of two trajectories that obey the bounds obeys them too.
    """
    if ref.shape[0] == 0:
        return ref.copy()
    forward = _follow(ref, vmax, amax, dt, settle)
    if lookahead == 0:
        return forward
    backward = _follow(ref[::-1].copy(), vmax, amax, dt, settle)[::-1]
    return (1 - lookahead) * forward + lookahead * backward


def _smooth(
    raw: FloatArray,
    half_band: FloatArray,
    vmax: float,
    amax: float,
    fps: float,
    p: VcamParams,
    clamp: tuple[FloatArray, FloatArray] | None = None,
) -> FloatArray:
    ref = _gauss(raw, p.smooth_sigma_s * fps)
    if clamp is not None:
        ref = np.clip(ref, *clamp)
    ref = _deadzone(ref, half_band, half_band * p.stop_speed / fps, p.lookahead)
    # The dead zone leaves kinks where the band starts dragging; soften them before the limiter
    # so it sees a smooth reference and only has to act on genuinely fast moves.
    ref = _gauss(ref, p.smooth_sigma_s * fps / 2)
    ref = _limit(ref, vmax, amax, 1.0 / fps, p.settle_s, p.lookahead)
    return _gauss_odd(ref, p.final_sigma_s * fps)


# --- the plan ----------------------------------------------------------------------------------


def plan_centered(
    frames: int,
    players: FramePoints | Sequence[npt.ArrayLike | None],
    panorama_size: tuple[int, int],
    fps: float,
    params: VcamParams | None = None,
    *,
    ball: FramePoints | Sequence[npt.ArrayLike | None] | None = None,
) -> VcamPath:
    """Plan the "Centered" virtual camera for a whole sequence.

    Args:
        frames: Number of frames ``F`` to plan (frames ``0 .. F-1``).
        players: Players' foot points in panorama pixels: a :class:`FramePoints` (or
            ``FramePoints.from_rows`` of ``(frame, x, y)`` rows), or one ``[M_f, 2]`` array per
            frame. Frames may be empty.
        panorama_size: ``(width, height)`` of the panorama in pixels.
        fps: Frame rate, to turn the parameters' seconds into frames.
        params: Tuning; the defaults when ``None``.
        ball: The ball's panorama position where known, in the same layouts as ``players``
            (several candidates in one frame are averaged).

    Returns:
        The window per frame: inside the panorama, 16:9, width between the parameters' bounds
        (and never taller than the panorama).

    Raises:
        ValueError: For a point beyond the last frame, a non-positive size or fps.
    """
    p = params or VcamParams()
    pano_w, pano_h = (float(s) for s in panorama_size)
    if pano_w <= 0 or pano_h <= 0 or fps <= 0 or frames < 0:
        raise ValueError("panorama_size and fps must be positive and frames >= 0")
    if frames == 0:
        empty = np.zeros(0, np.float32)
        return VcamPath(empty, empty, empty)
    pts = _as_points(players)
    ball_pts = _as_points(ball if ball is not None else [])
    for name, fp in (("players", pts), ("ball", ball_pts)):
        if fp.frame.size and int(fp.frame.max()) >= frames:
            raise ValueError(f"{name} has a point at frame {int(fp.frame.max())} >= {frames}")

    max_w = min(p.max_width * pano_w, pano_h * ASPECT)
    min_w = min(p.min_width * pano_w, max_w)

    xy = pts.xy.astype(np.float64)
    sx = _axis_stats(pts.frame, xy[:, 0], frames, p)
    sy = _axis_stats(pts.frame, xy[:, 1], frames, p)
    bx, by = _ball_per_frame(ball_pts, frames)
    has_ball = ~np.isnan(bx)
    w = p.ball_weight

    aim_x = np.where(
        has_ball,
        np.where(np.isnan(sx.trimmed_mean), bx, (1 - w) * sx.trimmed_mean + w * bx),
        sx.trimmed_mean,
    )
    aim_y = np.where(
        has_ball,
        np.where(np.isnan(sy.trimmed_mean), by, (1 - w) * sy.trimmed_mean + w * by),
        sy.trimmed_mean,
    )

    # The window is centred on the aim, so it must reach the farther of the two spread
    # quantiles on each axis (and the ball), not just span their difference.
    with np.errstate(invalid="ignore"):
        half_x = np.fmax(aim_x - sx.q_lo, sx.q_hi - aim_x)
        half_y = np.fmax(aim_y - sy.q_lo, sy.q_hi - aim_y)
        half_x = np.where(has_ball, np.fmax(half_x, np.abs(bx - aim_x)), half_x)
        half_y = np.where(has_ball, np.fmax(half_y, np.abs(by - aim_y)), half_y)
    # Frames with the ball only (no players) give no spread: they hold the zoom.
    no_players = sx.count == 0
    need_w = 2 * np.fmax(half_x, half_y * ASPECT) * (1 + p.margin)
    need_w[no_players] = np.nan

    aim_x = _hold(aim_x, pano_w / 2)
    aim_y = _hold(aim_y, pano_h / 2)
    log_w = np.log(np.clip(_hold(need_w, max_w), min_w, max_w))

    log_w = _smooth(
        log_w,
        np.full(frames, p.zoom_deadzone),
        p.zoom_speed_max,
        p.zoom_accel_max,
        fps,
        p,
    )
    width = np.clip(np.exp(log_w), min_w, max_w)
    height = width / ASPECT

    # Pan/tilt limits are absolute (pixels per second), as an operator's arm moves the head.
    vmax, amax = p.pan_speed_max * pano_w, p.pan_accel_max * pano_w
    cx = _smooth(aim_x, p.pan_deadzone * width, vmax, amax, fps, p, (width / 2, pano_w - width / 2))
    cy = _smooth(
        aim_y, p.pan_deadzone * height, vmax, amax, fps, p, (height / 2, pano_h - height / 2)
    )
    # Safety net only: the smoothed pan can graze an edge where the limiter rounds a corner.
    cx = np.clip(cx, width / 2, pano_w - width / 2)
    cy = np.clip(cy, height / 2, pano_h - height / 2)
    return VcamPath(cx.astype(np.float32), cy.astype(np.float32), width.astype(np.float32))
