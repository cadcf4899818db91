"""A lofted ball's path in 3D from one static view: ballistic segments fitted to the ball's rays.

Seen from one camera, a ball in the air is not where its image meets the grass: at 3 m up and
40 m away, 13 m below the camera, that point is 13 m too far. One view cannot tell height from
distance for one frame, but a flight can: gravity is known. A ballistic path is linear in its six
unknowns (start point and velocity),

    P(t) = p0 + v t + (0, 0, -g t^2 / 2),

and "P(t_k) lies on the ray through the ball's pixel at t_k" is linear in them too (the cross
product of the ray's direction with ``P(t_k) - C`` is zero). So each window of sightings is one
small weighted least-squares problem; the rolling alternative (height fixed at the ball's
radius, four unknowns) is another. A window is a flight when the ballistic fit explains the
pixels and the rolling one does not, and the flight rises high enough to matter.

`find_flights` grows windows greedily along the track's sightings and returns the flights it
accepts; the tracker then reads the ball's ground point and height off them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from activities.stitch.panorama import PanoramaModel, pitch_to_panorama
from polyvision.geometry.pitch import BALL_RADIUS_M

Float64Array = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]

GRAVITY_MPS2 = 9.81

LAUNCH_WEIGHT_PX_PER_M = 20.0
"""How hard a flight is held to leaving the grass: 10 cm off costs as much as 2 pixels."""


@dataclass(frozen=True)
class FlightSettings:
    """Knobs of the flight search.

    Attributes:
        min_frames: Fewest sightings in a flight.
        max_s: Longest flight searched (a long ball is in the air about three seconds).
        inlier_px: A sighting within this many pixels of the fitted path is explained by it.
        inlier_share: Share of the window's sightings a fit must explain.
        min_apex_m: Flights lower than this stay on the grass (a bobbling ball).
        rolling_worse: The rolling fit must explain this many fewer sightings.
        max_speed_mps: Fastest plausible ball (a hard shot is about 35 m/s).
    """

    min_frames: int = 8
    max_s: float = 3.5
    inlier_px: float = 2.0
    inlier_share: float = 0.8
    min_apex_m: float = 0.5
    rolling_worse: int = 3
    max_speed_mps: float = 38.0


@dataclass(frozen=True)
class Flight:
    """One ballistic segment.

    Attributes:
        first: First frame of the flight (it may start before its first sighting, when the
            ball left the grass unseen).
        last: Last frame of the flight.
        origin: The frame ``p0`` and ``v`` are at (the flight's first sighting).
        p0: ``(x, y, z)`` metres at ``origin``.
        v: ``(vx, vy, vz)`` metres per second at ``origin``.
    """

    first: int
    last: int
    origin: int
    p0: Float64Array
    v: Float64Array

    def at(self, frames: Int64Array, fps: float) -> Float64Array:
        """``[N, 3]`` positions at ``frames`` (the ball's centre, never below its radius)."""
        t = (np.asarray(frames, np.float64) - self.origin) / fps
        p = self.p0[None, :] + self.v[None, :] * t[:, None]
        p[:, 2] -= 0.5 * GRAVITY_MPS2 * t**2
        p[:, 2] = np.maximum(p[:, 2], BALL_RADIUS_M)
        return p


def pixel_rays(model: PanoramaModel, uv: Float64Array) -> Float64Array:
    """``[N, 3]`` directions of the rays through panorama pixels (not normalised)."""
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    az = model.heading_rad - (uv[:, 0] - model.cu) / model.focal_px
    tan_e = (model.cv - uv[:, 1]) / model.focal_px
    return np.column_stack([np.cos(az), np.sin(az), tan_e])


def _skew(d: Float64Array) -> Float64Array:
    """``[N, 3, 3]`` matrices ``S`` with ``S @ x == cross(d, x)``."""
    s = np.zeros((len(d), 3, 3))
    s[:, 0, 1], s[:, 0, 2] = -d[:, 2], d[:, 1]
    s[:, 1, 0], s[:, 1, 2] = d[:, 2], -d[:, 0]
    s[:, 2, 0], s[:, 2, 1] = -d[:, 1], d[:, 0]
    return s


def _fit(
    t: Float64Array,
    rays: Float64Array,
    centre: Float64Array,
    distance: Float64Array,
    focal_px: float,
    ballistic: bool,
    lands: bool = False,
    launches: bool = True,
) -> Float64Array | None:
    """Least-squares start point and velocity (``[6]``: x y z vx vy vz) of a path on the rays.

    Each sighting gives ``S_k (P(t_k) - C) = 0``, weighted so its residual is about the pixel
    error (an angle times the focal length: the cross product's size over the distance).
    """
    n = len(t)
    design = np.zeros((n, 3, 6))
    design[:, 0, 0] = design[:, 1, 1] = design[:, 2, 2] = 1.0
    design[:, 0, 3] = design[:, 1, 4] = design[:, 2, 5] = t
    offset = np.zeros((n, 3))
    offset[:, 2] = -0.5 * GRAVITY_MPS2 * t**2 if ballistic else 0.0
    skew = _skew(rays)
    weight = focal_px / (np.linalg.norm(rays, axis=1) * np.maximum(distance, 1.0))
    a = np.einsum("nij,njk->nik", skew, design) * weight[:, None, None]
    b = np.einsum("nij,nj->ni", skew, centre[None, :] - offset) * weight[:, None]
    a, b = a.reshape(-1, 6), b.reshape(-1)
    if ballistic and launches:
        # Launched from the grass: a pass, a shot or a clearance leaves the ground at the first
        # sighting. Without this, a short window can slide its whole path along the rays (a
        # lower, nearer flight and a higher, farther one project alike).
        launch = np.zeros((1, 6))
        launch[0, 2] = LAUNCH_WEIGHT_PX_PER_M
        a = np.concatenate([a, launch])
        b = np.concatenate([b, [LAUNCH_WEIGHT_PX_PER_M * BALL_RADIUS_M]])
    if ballistic and lands:
        # ... and back on it at the last sighting (a bounce), when asked.
        # Half a frame after the last sighting: the ball meets the grass between two frames.
        end = float(t[-1]) + 0.5 * (float(t[-1] - t[-2]) if len(t) > 1 else 0.04)
        landing = np.zeros((1, 6))
        landing[0, 2], landing[0, 5] = LAUNCH_WEIGHT_PX_PER_M, LAUNCH_WEIGHT_PX_PER_M * end
        target = BALL_RADIUS_M + 0.5 * GRAVITY_MPS2 * end**2
        a = np.concatenate([a, landing])
        b = np.concatenate([b, [LAUNCH_WEIGHT_PX_PER_M * target]])
    if not ballistic:
        # Rolling: z = radius, vz = 0 are known; move them to the right-hand side.
        b = b - a[:, 2] * BALL_RADIUS_M
        a = a[:, [0, 1, 3, 4]]
    solution, *_ = np.linalg.lstsq(a, b, rcond=None)
    if not np.all(np.isfinite(solution)):
        return None
    if ballistic:
        return np.asarray(solution, np.float64)
    x0, y0, vx, vy = solution
    return np.array([x0, y0, BALL_RADIUS_M, vx, vy, 0.0])


def _robust_fit(
    model: PanoramaModel,
    t: Float64Array,
    rays: Float64Array,
    centre: Float64Array,
    distance: Float64Array,
    uv: Float64Array,
    ballistic: bool,
    inlier_px: float,
    lands: bool = False,
    launches: bool = True,
) -> Float64Array | None:
    """`_fit`, then again on the sightings the first fit explains: one wrong candidate in a
    window must not drag the path off the others."""
    params = _fit(t, rays, centre, distance, model.focal_px, ballistic, lands, launches)
    if params is None:
        return None
    inliers = _residual_px(model, params, t, uv, ballistic) <= 2.0 * inlier_px
    if inliers.sum() >= 4 and not inliers.all():
        refit = _fit(
            t[inliers],
            rays[inliers],
            centre,
            distance[inliers],
            model.focal_px,
            ballistic,
            lands,
            launches,
        )
        if refit is not None:
            return refit
    return params


def _residual_px(
    model: PanoramaModel, params: Float64Array, t: Float64Array, uv: Float64Array, ballistic: bool
) -> Float64Array:
    p = params[None, :3] + params[None, 3:] * t[:, None]
    if ballistic:
        p[:, 2] -= 0.5 * GRAVITY_MPS2 * t**2
    projected = pitch_to_panorama(model, p)
    return np.asarray(np.hypot(*(projected - uv).T), np.float64)


def find_flights(
    model: PanoramaModel,
    frames: Int64Array,
    uv: Float64Array,
    ground: Float64Array,
    fps: float,
    settings: FlightSettings | None = None,
) -> list[Flight]:
    """The ball's flights among a track's sightings.

    Args:
        model: The panorama the pixels are in.
        frames: ``[N]`` frames of the sightings, ascending.
        uv: ``[N, 2]`` the ball's pixel in each.
        ground: ``[N, 2]`` where each pixel's ray meets the plane at the ball's radius (a first
            guess of the distance, for the weights).
        fps: Frames per second.
        settings: The knobs.
    """
    s = settings or FlightSettings()
    centre = np.asarray(model.center, np.float64)
    rays = pixel_rays(model, uv)
    distance = np.hypot(ground[:, 0] - centre[0], ground[:, 1] - centre[1])
    distance = np.where(np.isfinite(distance), distance, 60.0)
    flights: list[Flight] = []
    i, n = 0, len(frames)
    max_frames = int(s.max_s * fps)
    while i + s.min_frames <= n:
        # Held to the grass at its start only when the ball was just seen there: after a gap
        # the window may start mid-flight.
        launches = bool(i > 0 and frames[i] - frames[i - 1] <= 3)

        def fit(
            window: slice, t: Float64Array, lands: bool, launches: bool = launches
        ) -> Float64Array | None:
            return _robust_fit(
                model,
                t,
                rays[window],
                centre,
                distance[window],
                uv[window],
                True,
                s.inlier_px,
                lands,
                launches,
            )

        best: tuple[int, Float64Array] | None = None
        j = i + s.min_frames
        misses = 0
        while j <= n and frames[j - 1] - frames[i] <= max_frames:
            window = slice(i, j)
            t = (frames[window] - frames[i]) / fps
            params = fit(window, t, False)
            ok = params is not None and _accept(model, params, t, uv[window], s)
            if ok and params is not None:
                best, misses = (j, params), 0
            else:
                misses += 1
                if misses > 4:  # the path has left the parabola: a touch or a bounce
                    break
            j += 1
        if best is not None:
            j, params = best
            window = slice(i, j)
            t = (frames[window] - frames[i]) / fps
            # A flight that ends on the grass (a bounce) is better pinned by its landing too: far
            # from the camera two pixels are metres along the ray.
            landed = fit(window, t, True)
            if (
                landed is not None
                and _inliers(model, landed, t, uv[window], s)
                >= _inliers(model, params, t, uv[window], s) - 1
            ):
                params = landed
            if _rolling_worse(model, t, rays[window], centre, distance[window], uv[window], s):
                before = int(frames[i - 1]) + 1 if i > 0 else int(frames[i]) - max_frames
                after = int(frames[j]) - 1 if j < n else int(frames[j - 1]) + max_frames
                first, last = _on_grass_span(params, int(frames[i]), fps, before, after)
                flights.append(
                    Flight(
                        min(first, int(frames[i])),
                        max(last, int(frames[j - 1])),
                        int(frames[i]),
                        params[:3].copy(),
                        params[3:].copy(),
                    )
                )
                i = j
                continue
        i += 1
    return flights


def _on_grass_span(
    params: Float64Array, origin: int, fps: float, earliest: int, latest: int
) -> tuple[int, int]:
    """Frames where the fitted path leaves and meets the grass, within ``[earliest, latest]``
    (the sightings around the flight): the unseen start and end of a flight are filled."""
    z0, vz = float(params[2]), float(params[5])
    root = vz**2 + 2.0 * GRAVITY_MPS2 * max(z0 - BALL_RADIUS_M, 0.0)
    lift = (vz - np.sqrt(root)) / GRAVITY_MPS2
    land = (vz + np.sqrt(root)) / GRAVITY_MPS2
    first = max(earliest, origin + int(np.floor(lift * fps)))
    last = min(latest, origin + int(np.ceil(land * fps)))
    return first, last


def _inliers(
    model: PanoramaModel, params: Float64Array, t: Float64Array, uv: Float64Array, s: FlightSettings
) -> int:
    return int(np.sum(_residual_px(model, params, t, uv, True) <= s.inlier_px))


def _accept(
    model: PanoramaModel, params: Float64Array, t: Float64Array, uv: Float64Array, s: FlightSettings
) -> bool:
    residual = _residual_px(model, params, t, uv, True)
    if np.mean(residual <= s.inlier_px) < s.inlier_share:
        return False
    z0, vz = params[2], params[5]
    duration = float(t[-1])
    heights = z0 + vz * t - 0.5 * GRAVITY_MPS2 * t**2
    apex_t = float(np.clip(vz / GRAVITY_MPS2, 0.0, duration))
    apex = z0 + vz * apex_t - 0.5 * GRAVITY_MPS2 * apex_t**2
    # Underground, implausibly high or fast paths fit the pixels by sliding along the rays (a
    # ball rolling away from the camera looks like one rising towards it): not a ball's.
    speed = float(np.hypot(np.hypot(params[3], params[4]), params[5]))
    ends = params[None, :2] + params[None, 3:5] * np.array([[0.0], [duration]])
    # Over the ground, not between the camera and the pitch: within the stands' reach.
    over_pitch = bool(
        np.all((ends[:, 0] > -10) & (ends[:, 0] < 115) & (ends[:, 1] > -5) & (ends[:, 1] < 78))
    )
    return bool(
        heights.min() > -0.3
        and s.min_apex_m <= apex <= 40.0
        and speed <= s.max_speed_mps
        and over_pitch
    )


def _rolling_worse(
    model: PanoramaModel,
    t: Float64Array,
    rays: Float64Array,
    centre: Float64Array,
    distance: Float64Array,
    uv: Float64Array,
    s: FlightSettings,
) -> bool:
    flight = _robust_fit(model, t, rays, centre, distance, uv, True, s.inlier_px)
    rolling = _robust_fit(model, t, rays, centre, distance, uv, False, s.inlier_px)
    if flight is None:
        return False
    if rolling is None:
        return True
    in_flight = int(np.sum(_residual_px(model, flight, t, uv, True) <= s.inlier_px))
    in_rolling = int(np.sum(_residual_px(model, rolling, t, uv, False) <= s.inlier_px))
    return in_flight >= in_rolling + s.rolling_worse
