"""How a virtual camera head moves: a critically damped spring with bounded speed and
acceleration and a dead zone.

An operator neither jitters nor whips the camera around. Every mode (`activities.vcam.modes`)
produces a raw target per frame (pan, tilt, log zoom) and moves the camera towards it with
:func:`follow`:

* a **critically damped spring** (natural frequency ``2 / settle_s``): it closes an error in
  about ``settle_s`` without overshoot, with a velocity feed-forward of the target's own motion
  so a steadily moving target is followed without lag;
* a **dead zone**: errors smaller than ``deadzone`` pull nothing, so small drifts of the play
  leave the camera still; beyond it the spring pulls by the excess only (no jump at its edge);
* **bounds** on speed and acceleration, as a camera head's motors have.

:func:`follow` is causal (frame ``i`` only sees targets up to ``i``): the live variant. Offline,
:func:`smooth` runs it forwards and backwards in time and averages the two, which cancels the
follower's lag (one pass is late by as much as the other is early) and keeps the bounds (the mean
of two trajectories within them is within them), then rounds the corners a saturated
acceleration leaves with a short Gaussian (a non-negative kernel that sums to one keeps the
bounds too). Everything is plain floating-point arithmetic on arrays: deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter1d

__all__ = ["Motion", "follow", "smooth"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Motion:
    """Limits of one axis of the camera head (units of the axis: pixels, or log width).

    Attributes:
        vmax: Largest speed, units per second.
        amax: Largest acceleration, units per second squared.
        settle_s: Time the spring takes to close an error (about ``2 / omega``).
        deadzone: Errors up to this size pull nothing (units of the axis; a scalar or one per
            frame, e.g. a share of the current view width).
        final_sigma_s: Offline only: the Gaussian that rounds the limiter's corners, seconds.
    """

    vmax: float
    amax: float
    settle_s: float = 0.6
    deadzone: float = 0.0
    final_sigma_s: float = 0.15

    def __post_init__(self) -> None:
        for name in ("vmax", "amax", "settle_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("deadzone", "final_sigma_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")


def follow(
    target: npt.ArrayLike,
    fps: float,
    motion: Motion,
    deadzone: npt.ArrayLike | None = None,
) -> FloatArray:
    """The causal camera: where a spring-driven head pointed at ``target`` is, frame by frame.

    Args:
        target: ``[F]`` raw target per frame.
        fps: Frames per second.
        motion: The head's limits.
        deadzone: ``[F]`` dead zone per frame overriding ``motion.deadzone`` (e.g. a share of
            the view's width, which changes with the zoom).

    Returns:
        ``[F]`` positions; the head starts at rest on the first target.
    """
    ref = np.asarray(target, np.float64)
    n = ref.shape[0]
    out = np.empty(n, np.float64)
    if n == 0:
        return out
    band = (
        np.full(n, motion.deadzone)
        if deadzone is None
        else np.broadcast_to(np.asarray(deadzone, np.float64), (n,))
    )
    dt = 1.0 / fps
    # Keep the spring at least a few frames slow: a natural frequency near fps would ring.
    omega = min(2.0 / motion.settle_s, 0.5 / dt)
    vmax, dv = motion.vmax, motion.amax * dt
    p, v = float(ref[0]), 0.0
    prev = float(ref[0])
    for i in range(n):
        r = float(ref[i])
        v_ref = (r - prev) / dt
        prev = r
        e = r - p
        b = float(band[i])
        if abs(e) <= b:
            excess, feed = 0.0, 0.0
        else:
            excess = e - math.copysign(b, e)
            # Feed the target's motion forward only while it pulls away (or is followed): a
            # target wandering inside the band does not drag the head.
            feed = v_ref
        # The spring's acceleration towards the target, with the target's velocity as the
        # velocity it should settle to (critically damped: 2 * omega damping).
        accel = omega * omega * excess + 2.0 * omega * (feed - v)
        # A long move brakes in time: never faster than the speed from which the head can stop
        # at the target with the largest deceleration.
        v_new = v + min(max(accel * dt, -dv), dv)
        brake = math.sqrt(2.0 * motion.amax * abs(excess)) + abs(feed)
        v_new = min(max(v_new, -brake, -vmax), brake, vmax)
        # The brake may ask more than amax of deceleration only where the spring overshot its
        # own limit by rounding; keep acceleration bounded regardless.
        v = v + min(max(v_new - v, -dv), dv)
        p += v * dt
        out[i] = p
    return out


def smooth(
    target: npt.ArrayLike,
    fps: float,
    motion: Motion,
    *,
    causal: bool,
    deadzone: npt.ArrayLike | None = None,
) -> FloatArray:
    """The camera's positions for a raw ``target``: :func:`follow` when ``causal``, else the
    zero-lag offline camera (forward and backward followers averaged, then rounded)."""
    ref = np.asarray(target, np.float64)
    forward = follow(ref, fps, motion, deadzone)
    if causal or ref.shape[0] < 2:
        return forward
    band = None if deadzone is None else np.asarray(deadzone, np.float64)[::-1]
    backward = follow(ref[::-1], fps, motion, band)[::-1]
    mixed = 0.5 * (forward + backward)
    sigma = motion.final_sigma_s * fps
    if sigma <= 0:
        return mixed
    # Point-reflected ends continue a pan that is still moving at the first or last frame
    # rather than stopping it inside the kernel.
    pad = min(mixed.shape[0] - 1, math.ceil(4 * sigma))
    head = 2 * mixed[0] - mixed[pad:0:-1]
    tail = 2 * mixed[-1] - mixed[-2 : -pad - 2 : -1]
    padded = np.concatenate([head, mixed, tail])
    rounded = gaussian_filter1d(padded, sigma, mode="nearest", truncate=4.0)
    return np.asarray(rounded[pad : pad + mixed.shape[0]], np.float64)
