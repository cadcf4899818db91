"""The virtual camera's three modes: Director, Zones and Centered.

Each mode turns what the tracker saw (players' foot points and the reported ball, pitch metres)
into a raw target per frame: a point on the ground to look at and a **footprint** (the area of
ground the view covers, m²), then moves the camera head towards it with the physics of
`activities.vcam.physics` (offline, or ``causal`` for live use) and keeps the view inside the
panorama. The view is the rectilinear camera of `activities.vcam.view`.

Zoom is chosen in ground terms on purpose: the panorama squeezes the far half of the pitch into a
few rows, so a window of fixed pixel width frames ten times more ground at the far touchline
than at the near one. Asking for a footprint keeps the players the same size on screen wherever
the play is, as a broadcast operator does. The footprint of a view depends on its tilt and zoom
only (turning the camera about the vertical axis rotates the footprint), so the width that gives
an area is found by bisection per frame (:func:`width_for_area`).

* **Director** (:func:`plan_director`) follows the ball with look-ahead; its footprint grows
  with the spread of the players near the ball and with the ball's speed; it widens while the
  ball is lost and falls back to the players' centroid after ``fallback_s``.
* **Zones** (:func:`plan_zones`) cuts between preset shots (left, centre, right third and wide)
  by where the ball (else the players) is, with hysteresis.
* **Centered** (:func:`plan_centered_view`) looks at the players' centroid and zooms to their
  spread.

Parameters are plain dataclasses; :func:`plan_camera` builds one from a request's overrides and
refuses unknown names or non-finite values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.ndimage import maximum_filter1d, median_filter, uniform_filter1d

from activities.stitch.panorama import PanoramaModel, panorama_to_pitch, pitch_to_panorama
from activities.vcam.contracts import CAMERA_MODES, CameraSettings
from activities.vcam.physics import Motion, smooth
from activities.vcam.plan import VcamParams, VcamPath, _axis_stats
from activities.vcam.view import ViewGeometry, footprint_areas, view_corners, view_extents

__all__ = [
    "CameraScene",
    "CenteredParams",
    "DirectorParams",
    "ZonesParams",
    "footprints",
    "params_for",
    "plan_camera",
    "plan_centered_view",
    "plan_director",
    "plan_zones",
    "width_for_area",
]

FloatArray = npt.NDArray[np.float64]

VIEW_SIZE = (1920, 1080)
"""The view's aspect (and the corners' pixel grid) the planner sizes windows for."""


@dataclass(frozen=True)
class CameraScene:
    """What the planner knows about a match, per frame, in pitch metres.

    Attributes:
        frames: Frames to plan (``0 .. frames - 1``).
        fps: Frame rate.
        model: The panorama the view is cut from.
        player_frame: ``[N]`` frame of each player foot point.
        player_xy: ``[N, 2]`` foot points, pitch metres.
        ball_frame: ``[M]`` frames where the ball is reported (visible, in play).
        ball_xy: ``[M, 2]`` the point of the grass under the ball, pitch metres.
    """

    frames: int
    fps: float
    model: PanoramaModel
    player_frame: npt.NDArray[np.int64]
    player_xy: FloatArray
    ball_frame: npt.NDArray[np.int64]
    ball_xy: FloatArray

    def __post_init__(self) -> None:
        if self.frames < 0 or not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError("frames must be >= 0 and fps positive")
        for name, frame, xy in (
            ("player", self.player_frame, self.player_xy),
            ("ball", self.ball_frame, self.ball_xy),
        ):
            f = np.asarray(frame, np.int64)
            pts = np.asarray(xy, np.float64).reshape(-1, 2)
            if f.shape != (pts.shape[0],):
                raise ValueError(f"{name}_frame and {name}_xy differ in length")
            keep = (f >= 0) & (f < self.frames) & np.isfinite(pts).all(axis=1)
            object.__setattr__(self, f"{name}_frame", f[keep])
            object.__setattr__(self, f"{name}_xy", pts[keep])


# --- shared parameters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Common:
    """Tuning every mode shares.

    Attributes:
        pan_speed: Largest pan/tilt speed, panorama focal lengths (radians) per second.
        pan_accel: Largest pan/tilt acceleration, radians per second squared.
        zoom_speed: Largest zoom rate, natural-log width per second.
        zoom_accel: Largest zoom acceleration, natural-log width per second squared.
        settle_s: Time the head's spring takes to close an error.
        deadzone: Pan dead zone, share of the view's width.
        zoom_deadzone: Zoom dead zone, natural-log width.
    """

    pan_speed: float = 0.6
    pan_accel: float = 1.2
    zoom_speed: float = 0.8
    zoom_accel: float = 1.6
    settle_s: float = 0.5
    deadzone: float = 0.03
    zoom_deadzone: float = 0.05


@dataclass(frozen=True)
class DirectorParams(_Common):
    """Director: follow the ball.

    Attributes:
        lookahead_s: The aim leads the ball by its motion over this time (offline: the ball's
            mean position over the next ``lookahead_s``; causal: extrapolated velocity).
        area_m2: Footprint with the ball among few players, m².
        area_max_m2: Largest footprint while the ball is known, m².
        area_lost_m2: Footprint the view widens to while the ball is lost, m².
        near_m: Players within this distance of the ball decide the framing.
        spread_margin: The footprint spans the near players' spread times ``1 + margin``.
        speed_ref_mps: At this ball speed the footprint doubles.
        fill_gap_s: Gaps in the ball track up to this long are bridged linearly.
        jump_m: A reported ball farther than this from its neighbours' median is ignored.
        fallback_s: After the ball is lost this long, the camera turns to the players.
        reacquire_s: After a gap, the view narrows back over this time.
        widen_s: The view opens to ``area_lost_m2`` over this time without the ball.
        hedge: Share by which the aim leans towards the players' centroid while the view is
            open (the ball lost, or just found again).
    """

    lookahead_s: float = 0.4
    area_m2: float = 900.0
    area_max_m2: float = 2000.0
    area_lost_m2: float = 3500.0
    near_m: float = 15.0
    spread_margin: float = 0.3
    speed_ref_mps: float = 20.0
    fill_gap_s: float = 1.5
    jump_m: float = 12.0
    fallback_s: float = 3.0
    reacquire_s: float = 1.5
    widen_s: float = 3.0
    hedge: float = 0.6


@dataclass(frozen=True)
class ZonesParams(_Common):
    """Zones: preset shots switched with hysteresis.

    Attributes:
        margin_m: The play must be this far into a neighbouring third to cut to it.
        hold_s: ... and stay there this long.
        wide_after_s: Without ball or players this long, the wide shot.
        zone_margin: Each shot is this much wider than its third of the pitch (or the pitch).
    """

    margin_m: float = 4.0
    hold_s: float = 1.0
    wide_after_s: float = 2.0
    zone_margin: float = 1.1
    pan_speed: float = 0.8
    pan_accel: float = 1.6


@dataclass(frozen=True)
class CenteredParams(_Common):
    """Centered: the players' centroid.

    Attributes:
        trim: Share of players cut from each end (per axis) before averaging.
        spread_quantile: The footprint spans players between this quantile and its complement.
        margin: Extra room around that spread.
        area_min_m2: Smallest footprint, m².
        area_max_m2: Largest footprint, m².
        smooth_s: The raw centroid is averaged over this time first (track flicker).
    """

    trim: float = 0.2
    spread_quantile: float = 0.1
    margin: float = 0.25
    area_min_m2: float = 1200.0
    area_max_m2: float = 6000.0
    smooth_s: float = 0.5


ModeParams = DirectorParams | ZonesParams | CenteredParams

_PARAMS: dict[str, type[DirectorParams] | type[ZonesParams] | type[CenteredParams]] = {
    "director": DirectorParams,
    "zones": ZonesParams,
    "centered": CenteredParams,
}


def params_for(mode: str, overrides: dict[str, float] | None = None) -> ModeParams:
    """The mode's parameters with ``overrides`` applied.

    Raises:
        ValueError: An unknown mode or parameter, or a value that is not a positive finite
            number (every parameter is one).
    """
    if mode not in _PARAMS:
        raise ValueError(f"unknown camera mode {mode!r}; one of {', '.join(CAMERA_MODES)}")
    cls = _PARAMS[mode]
    names = {f.name for f in fields(cls)}
    values: dict[str, Any] = {}
    for name, value in (overrides or {}).items():
        if name not in names:
            raise ValueError(
                f"unknown parameter {name!r} for mode {mode!r}; one of {', '.join(sorted(names))}"
            )
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"parameter {name!r} must be a finite number >= 0, got {value!r}")
        values[name] = number
    params = cls()
    try:
        return replace(params, **values)
    except (TypeError, ValueError) as exc:  # pragma: no cover - dataclass refusals
        raise ValueError(str(exc)) from exc


# --- geometry helpers ----------------------------------------------------------------------------


def _ground_to_panorama(model: PanoramaModel, xy: FloatArray) -> FloatArray:
    pts = np.column_stack([xy, np.zeros(len(xy))])
    return np.asarray(pitch_to_panorama(model, pts), np.float64)


def width_limits(geometry: ViewGeometry) -> tuple[float, float]:
    """Narrowest and widest window width, panorama pixels."""
    widest = min(float(geometry.width), geometry.height * VIEW_SIZE[0] / VIEW_SIZE[1])
    return widest / 40.0, widest


def footprints(model: PanoramaModel, cy: npt.ArrayLike, width: npt.ArrayLike) -> FloatArray:
    """``[F]`` ground area (m²) each view of tilt row ``cy`` and width ``width`` covers."""
    geometry = ViewGeometry.of(model)
    cy_arr = np.atleast_1d(np.asarray(cy, np.float64))
    corners = view_corners(geometry, np.full(cy_arr.shape, model.cu), cy_arr, width, VIEW_SIZE)
    ground = panorama_to_pitch(model, corners.reshape(-1, 2)).reshape(-1, 4, 2)
    area = footprint_areas(ground)
    return np.where(np.isfinite(area), area, np.inf)


def width_for_area(model: PanoramaModel, cy: npt.ArrayLike, area_m2: npt.ArrayLike) -> FloatArray:
    """``[F]`` window widths whose footprint at tilt row ``cy`` is ``area_m2`` (bisection in
    log width, clamped to :func:`width_limits`)."""
    geometry = ViewGeometry.of(model)
    cy_arr = np.atleast_1d(np.asarray(cy, np.float64))
    target = np.broadcast_to(np.asarray(area_m2, np.float64), cy_arr.shape)
    lo_w, hi_w = width_limits(geometry)
    lo = np.full(cy_arr.shape, math.log(lo_w))
    hi = np.full(cy_arr.shape, math.log(hi_w))
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        bigger = footprints(model, cy_arr, np.exp(mid)) > target
        hi = np.where(bigger, mid, hi)
        lo = np.where(bigger, lo, mid)
    return np.asarray(np.exp(0.5 * (lo + hi)), np.float64)


def _inside(
    model: PanoramaModel, cx: FloatArray, cy: FloatArray, width: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Shift (and where needed narrow) each view so it stays inside the panorama."""
    geometry = ViewGeometry.of(model)
    lo_w, hi_w = width_limits(geometry)
    width = np.clip(width, lo_w, hi_w)
    cy = cy.copy()
    for _ in range(4):
        half, top, bottom = view_extents(geometry, cy, width, VIEW_SIZE)
        span = bottom - top
        # Too tall for the panorama: narrow it (a view's height scales with its width).
        too_tall = span > model.height - 1
        width = np.where(too_tall, width * (model.height - 1) / span, width)
        cy = cy + np.maximum(0.0, -top) - np.maximum(0.0, bottom - (model.height - 1))
    half, top, bottom = view_extents(geometry, cy, width, VIEW_SIZE)
    cx = np.clip(cx, half, model.width - 1 - half)
    return cx, cy, width


def _move(
    model: PanoramaModel,
    fps: float,
    p: _Common,
    aim: FloatArray,
    log_w: FloatArray,
    causal: bool,
    log_area: FloatArray | None = None,
) -> VcamPath:
    """Smooth a raw aim (``[F, 2]`` panorama pixels) and zoom into a path inside the panorama.

    The zoom is either a log width (``log_w``) or, for modes that frame by footprint, a log
    area (``log_area``): the area is smoothed, and the width is solved for it at the smoothed
    tilt. Smoothing the width instead would mismatch the two while the camera tilts (the same
    width covers ten times more ground at the far touchline than at the near one), so a view
    could arrive narrow before it arrives far.
    """
    geometry = ViewGeometry.of(model)
    f = geometry.focal_px
    lo_w, hi_w = width_limits(geometry)
    log_w = np.clip(log_w, math.log(lo_w), math.log(hi_w))
    zoom = Motion(p.zoom_speed, p.zoom_accel, p.settle_s, p.zoom_deadzone)
    if log_area is not None:
        # Area goes as width squared: the same limits in log area are twice those in log width.
        area_zoom = Motion(2 * p.zoom_speed, 2 * p.zoom_accel, p.settle_s, 2 * p.zoom_deadzone)
        log_area = smooth(log_area, fps, area_zoom, causal=causal)
    log_w = smooth(log_w, fps, zoom, causal=causal)
    width = np.exp(log_w)
    # Clamp the target first so the head never chases a point it may not reach.
    cx_t, cy_t, _ = _inside(model, aim[:, 0], aim[:, 1], width)
    pan = Motion(p.pan_speed * f, p.pan_accel * f, p.settle_s)
    cx = smooth(cx_t, fps, pan, causal=causal, deadzone=p.deadzone * width)
    cy = smooth(cy_t, fps, pan, causal=causal, deadzone=p.deadzone * width * 9 / 16)
    if log_area is not None:
        width = width_for_area(model, cy, np.exp(log_area))
    cx, cy, width = _inside(model, cx, cy, width)
    return VcamPath(cx.astype(np.float32), cy.astype(np.float32), width.astype(np.float32))


def _per_frame_mean(frame: npt.NDArray[np.int64], xy: FloatArray, frames: int) -> FloatArray:
    count = np.bincount(frame, minlength=frames)[:frames]
    out = np.full((frames, 2), np.nan)
    has = count > 0
    for axis in range(2):
        total = np.bincount(frame, weights=xy[:, axis], minlength=frames)[:frames]
        out[has, axis] = total[has] / count[has]
    return out


def _fill(values: FloatArray, default: FloatArray) -> FloatArray:
    """Fill NaN rows with the last known row (the first known before it; ``default`` if none)."""
    known = ~np.isnan(values[:, 0])
    if not known.any():
        return np.tile(default, (values.shape[0], 1))
    idx = np.where(known, np.arange(values.shape[0]), 0)
    np.maximum.accumulate(idx, out=idx)
    out = values[idx]
    out[: int(np.argmax(known))] = values[int(np.argmax(known))]
    return out


def _players_axes(
    scene: CameraScene, trim: float, quantile: float
) -> tuple[FloatArray, FloatArray]:
    """``[F, 2]`` trimmed mean of the players per frame and ``[F, 2]`` extent between their
    ``quantile`` and its complement (NaN where a frame has none): the Centered planner's
    per-frame statistics (`activities.vcam.plan._axis_stats`)."""
    stats_params = VcamParams(trim=trim, spread_quantile=quantile)
    frame = scene.player_frame.astype(np.int32)
    stats = [
        _axis_stats(frame, scene.player_xy[:, axis], scene.frames, stats_params)
        for axis in range(2)
    ]
    centroid = np.column_stack([s.trimmed_mean for s in stats])
    spread = np.column_stack([s.q_hi - s.q_lo for s in stats])
    return centroid, spread


def _players_centroid(scene: CameraScene, trim: float) -> FloatArray:
    """``[F, 2]`` trimmed mean of the players per frame (NaN where none)."""
    return _players_axes(scene, trim, 0.0)[0]


def _seconds_since(known: npt.NDArray[np.bool_], fps: float) -> FloatArray:
    """Seconds since the last known frame (inf before the first)."""
    idx = np.where(known, np.arange(known.shape[0]), -1)
    np.maximum.accumulate(idx, out=idx)
    since = np.where(idx >= 0, np.arange(known.shape[0]) - idx, np.inf)
    return np.asarray(since / fps, np.float64)


def _hold_decay(values: FloatArray, decay_frames: float) -> FloatArray:
    """Running peak of ``values`` (in ``[0, 1]``) that falls back by ``1 / decay_frames`` a
    frame (causal)."""
    out = np.empty_like(values)
    step = 1.0 / max(decay_frames, 1.0)
    level = 0.0
    for i, v in enumerate(values):
        level = max(float(v), level - step)
        out[i] = level
    return out


def _area_to_log_width(model: PanoramaModel, aim: FloatArray, area: FloatArray) -> FloatArray:
    return np.log(width_for_area(model, aim[:, 1], area))


# --- Director ------------------------------------------------------------------------------------


def _trailing_median(values: FloatArray, size: int) -> FloatArray:
    """Median over each value and the ``size - 1`` before it (causal)."""
    padded = np.concatenate([np.repeat(values[:1], size - 1, axis=0), values])
    windows = np.lib.stride_tricks.sliding_window_view(padded, size, axis=0)
    return np.asarray(np.median(windows, axis=-1), np.float64)


def _ball_per_frame(scene: CameraScene, p: DirectorParams, causal: bool) -> FloatArray:
    """``[F, 2]`` the ball's ground point per frame after dropping jumps and bridging short
    gaps (NaN where still unknown). Live, a report is judged by the ones before it only, and
    gaps are held rather than bridged (the next sighting is not known yet)."""
    frames, fps = scene.frames, scene.fps
    ball = _per_frame_mean(scene.ball_frame, scene.ball_xy, frames)
    known = np.flatnonzero(~np.isnan(ball[:, 0]))
    if len(known) >= 3:
        # A false report is one far from the median of the reports around it.
        window = max(3, round(0.6 * fps) | 1)
        if causal:
            med = _trailing_median(ball[known], window)
        else:
            med = np.column_stack(
                [median_filter(ball[known, a], size=window, mode="nearest") for a in range(2)]
            )
        jump = np.hypot(*(ball[known] - med).T) > p.jump_m
        ball[known[jump]] = np.nan
        known = known[~jump]
    if len(known) >= 2 and not causal:
        gaps = np.diff(known)
        for a, b, gap in zip(known[:-1], known[1:], gaps, strict=True):
            if 1 < gap <= p.fill_gap_s * fps:
                t = (np.arange(a + 1, b) - a) / gap
                ball[a + 1 : b] = ball[a] + t[:, None] * (ball[b] - ball[a])
    return ball


def _near_spread(scene: CameraScene, ball: FloatArray, near_m: float) -> FloatArray:
    """``[F]`` 80th-percentile distance of the players within ``near_m`` of the ball (0: none)."""
    frames = scene.frames
    out = np.zeros(frames)
    if not len(scene.player_frame):
        return out
    at_ball = ball[scene.player_frame]
    dist = np.hypot(*(scene.player_xy - at_ball).T)
    near = np.isfinite(dist) & (dist <= near_m)
    f, d = scene.player_frame[near], dist[near]
    order = np.lexsort((d, f))
    f, d = f[order], d[order]
    count = np.bincount(f, minlength=frames)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    has = count > 0
    rank = np.floor(0.8 * (count[has] - 1)).astype(np.int64)
    out[has] = d[start[has] + rank]
    return out


def plan_director(scene: CameraScene, p: DirectorParams, *, causal: bool = False) -> VcamPath:
    """The Director camera: follows the ball, frames the play around it, widens when lost."""
    frames, fps, model = scene.frames, scene.fps, scene.model
    if frames == 0:
        return _empty()
    ball = _ball_per_frame(scene, p, causal)
    known = ~np.isnan(ball[:, 0])
    centroid = _players_centroid(scene, 0.2)
    pitch_centre = np.array([model.pitch_length_m / 2, model.pitch_width_m / 2])
    centroid = _fill(centroid, pitch_centre)

    # Time lost: since the last sighting (live) or to the nearer sighting (offline: the camera
    # may already turn back to where the ball reappears).
    since = _seconds_since(known, fps)
    until = _seconds_since(known[::-1], fps)[::-1]
    lost = since if causal else np.minimum(since, until)

    held = _fill(ball, centroid[0])
    if not causal:
        # Offline, a gap is bridged towards where the ball comes back: hold the last sighting
        # for the first half of the gap and the next one after.
        ahead = _fill(ball[::-1], centroid[-1])[::-1]
        held = np.where((until < since)[:, None], ahead, held)

    # Look-ahead: aim where the ball is going.
    lead = max(1, round(p.lookahead_s * fps))
    if causal:
        velocity = np.zeros_like(held)
        velocity[lead:] = (held[lead:] - held[:-lead]) / lead
        target = held + velocity * lead * 0.5
    else:
        padded = np.concatenate([held, np.repeat(held[-1:], lead, axis=0)])
        csum = np.concatenate([np.zeros((1, 2)), np.cumsum(padded, axis=0)])
        target = (csum[lead + 1 : lead + 1 + frames] - csum[1 : 1 + frames]) / lead
        target = 0.5 * (held + target)
    # Lost for longer than the fallback: the players' centroid, blended in over a second.
    blend = np.clip((lost - p.fallback_s) / 1.0, 0.0, 1.0)[:, None]
    target = (1 - blend) * target + blend * centroid

    # Footprint: the players near the ball, the ball's speed, and how long it has been lost.
    speed = np.zeros(frames)
    if frames > 1:
        step = np.hypot(*np.diff(held, axis=0).T) * fps
        speed[1:] = step
        size = max(3, round(0.2 * fps) | 1)
        if causal:
            speed = _trailing_median(speed, size)
        else:
            speed = median_filter(speed, size=size, mode="nearest")
    if not causal:
        # Offline the view widens before a long pass, not after it has left.
        speed = maximum_filter1d(speed, size=max(1, round(1.0 * fps)), mode="nearest")
    spread = _near_spread(scene, held, p.near_m)
    # A footprint of roughly (2 s)^2 * 16/9 wide covers the near players' spread s.
    span = 2.0 * spread * (1.0 + p.spread_margin)
    area = np.maximum(p.area_m2, span * span * 0.9)
    area = np.minimum(area * (1.0 + speed / p.speed_ref_mps), p.area_max_m2)
    # Widening follows the time since the last sighting (the view opens while the ball is
    # missing, even offline where the aim already turns to where it comes back), and stays
    # open for ``reacquire_s`` after a sighting: the first reports after a gap are the least
    # trustworthy (the tracker may have picked up a boot or a line), so the view keeps room.
    widen = _hold_decay(np.clip(since / max(p.widen_s, 1e-6), 0.0, 1.0), p.reacquire_s * fps)
    area = area + widen * np.maximum(0.0, p.area_lost_m2 - area)
    # While unsure, lean towards the players: a lost or doubtful ball is most likely among them.
    hedge = (p.hedge * widen)[:, None]
    target = (1 - hedge) * target + hedge * centroid

    aim = _ground_to_panorama(model, target)
    return _move(model, fps, p, aim, _area_to_log_width(model, aim, area), causal, np.log(area))


# --- Zones ---------------------------------------------------------------------------------------


def _hysteresis_zone(
    position_x: FloatArray, length: float, p: ZonesParams, fps: float
) -> FloatArray:
    """``[F]`` zone per frame (0 left, 1 centre, 2 right, 3 wide; NaN input → wide)."""
    third = length / 3.0
    hold = max(1, round(p.hold_s * fps))
    wide_after = max(1, round(p.wide_after_s * fps))
    zone = 1
    candidate, streak, unknown = 1, 0, 0
    out = np.empty(position_x.shape[0])
    for i, x in enumerate(position_x):
        if not math.isfinite(float(x)):
            unknown += 1
            out[i] = 3 if unknown >= wide_after else zone
            continue
        unknown = 0
        if zone == 3:
            zone = int(min(2, max(0, x // third)))
        else:
            lo_edge, hi_edge = zone * third, (zone + 1) * third
            want = zone
            if x < lo_edge - p.margin_m:
                want = max(0, int(x // third))
            elif x > hi_edge + p.margin_m:
                want = min(2, int(x // third))
            if want != zone:
                streak = streak + 1 if want == candidate else 1
                candidate = want
                if streak >= hold:
                    zone, streak = want, 0
            else:
                streak = 0
        out[i] = zone
    return out


def plan_zones(scene: CameraScene, p: ZonesParams, *, causal: bool = False) -> VcamPath:
    """The Zones camera: the left, centre or right third of the pitch, or the whole pitch."""
    frames, fps, model = scene.frames, scene.fps, scene.model
    if frames == 0:
        return _empty()
    ball = _per_frame_mean(scene.ball_frame, scene.ball_xy, frames)
    centroid = _players_centroid(scene, 0.2)
    x = np.where(np.isnan(ball[:, 0]), centroid[:, 0], ball[:, 0])
    zone = _hysteresis_zone(x, model.pitch_length_m, p, fps)
    length, width_m = model.pitch_length_m, model.pitch_width_m
    # Each shot frames its third of the pitch whole (corners and the middle of every edge),
    # the wide shot the whole pitch.
    bounds = [(0.0, length / 3), (length / 3, 2 * length / 3), (2 * length / 3, length)]
    bounds.append((0.0, length))
    aims, widths = [], []
    for x0, x1 in bounds:
        xs = np.array([x0, (x0 + x1) / 2, x1])
        ys = np.array([0.0, width_m / 2, width_m])
        grid = np.array([[x, y] for x in xs for y in ys])
        pix = _ground_to_panorama(model, grid)
        lo, hi = pix.min(axis=0), pix.max(axis=0)
        aims.append(0.5 * (lo + hi))
        widths.append(p.zone_margin * max(hi[0] - lo[0], (hi[1] - lo[1]) * 16 / 9))
    aim_arr, width_arr = np.array(aims), np.array(widths)
    z = zone.astype(np.int64)
    return _move(model, fps, p, aim_arr[z], np.log(width_arr[z]), causal)


# --- Centered ------------------------------------------------------------------------------------


def plan_centered_view(scene: CameraScene, p: CenteredParams, *, causal: bool = False) -> VcamPath:
    """The Centered camera: the players' trimmed centroid, zoomed to their spread."""
    frames, fps, model = scene.frames, scene.fps, scene.model
    if frames == 0:
        return _empty()
    pitch_centre = np.array([model.pitch_length_m / 2, model.pitch_width_m / 2])
    centroid = _fill(_players_centroid(scene, p.trim), pitch_centre)
    spread = _fill(_players_axes(scene, p.trim, p.spread_quantile)[1], np.array([60.0, 40.0]))
    window = max(1, round(p.smooth_s * fps))
    if window > 1:
        kernel = np.ones(window) / window
        if causal:
            pad_c = np.vstack([np.repeat(centroid[:1], window - 1, axis=0), centroid])
            pad_s = np.vstack([np.repeat(spread[:1], window - 1, axis=0), spread])
            centroid = np.column_stack(
                [np.convolve(pad_c[:, a], kernel, mode="valid") for a in range(2)]
            )
            spread = np.column_stack(
                [np.convolve(pad_s[:, a], kernel, mode="valid") for a in range(2)]
            )
        else:
            centroid = uniform_filter1d(centroid, window, axis=0, mode="nearest")
            spread = uniform_filter1d(spread, window, axis=0, mode="nearest")
    extent = spread * (1.0 + p.margin)
    area = np.clip(extent[:, 0] * extent[:, 1], p.area_min_m2, p.area_max_m2)
    aim = _ground_to_panorama(model, centroid)
    return _move(model, fps, p, aim, _area_to_log_width(model, aim, area), causal, np.log(area))


def _empty() -> VcamPath:
    empty = np.zeros(0, np.float32)
    return VcamPath(empty, empty, empty)


def plan_camera(scene: CameraScene, camera: CameraSettings) -> VcamPath:
    """Plan the path of ``camera.mode`` with its parameter overrides.

    Raises:
        ValueError: An unknown mode or parameter, or a bad value.
    """
    params = params_for(camera.mode, camera.params)
    if isinstance(params, DirectorParams):
        return plan_director(scene, params, causal=camera.causal)
    if isinstance(params, ZonesParams):
        return plan_zones(scene, params, causal=camera.causal)
    return plan_centered_view(scene, params, causal=camera.causal)
