"""Whether the virtual camera kept the ball in view."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


def points_in_quads(
    points: npt.NDArray[np.floating], quads: npt.NDArray[np.floating]
) -> npt.NDArray[np.bool_]:
    """Whether each point ``[M, 2]`` lies inside its quad ``[M, 4, 2]``.

    Even-odd ray casting, so corner order may run either way and the quad need not be convex (a
    ground footprint is convex, but a bad projection need not be). Points exactly on an edge may
    fall either side.
    """
    p = np.asarray(points, dtype=np.float64)[:, None, :]
    a = np.asarray(quads, dtype=np.float64)
    b = np.roll(a, -1, axis=1)
    # Edges that straddle the horizontal line through the point, and where they cross it.
    straddles = (a[..., 1] > p[..., 1]) != (b[..., 1] > p[..., 1])
    dy = np.where(straddles, b[..., 1] - a[..., 1], 1.0)
    x_cross = a[..., 0] + (p[..., 1] - a[..., 1]) * (b[..., 0] - a[..., 0]) / dy
    crossings = np.sum(straddles & (p[..., 0] < x_cross), axis=1)
    inside: npt.NDArray[np.bool_] = crossings % 2 == 1
    return inside


@dataclass(frozen=True)
class VcamScores:
    """Ball-in-view share over the frames where the ball is in play."""

    frames: int
    in_view: int
    missing_frames: int

    @property
    def ball_in_view_share(self) -> float | None:
        return self.in_view / self.frames if self.frames else None


def ball_in_view(
    ball_frame: npt.NDArray[np.integer],
    ball_xy: npt.NDArray[np.floating],
    vcam_frame: npt.NDArray[np.integer],
    vcam_quad: npt.NDArray[np.floating],
) -> VcamScores:
    """Count the frames in which the ball's ground position lies inside the camera's ground quad.

    Args:
        ball_frame: ``[N]`` frames to score (the ball exists and is in play), one row each.
        ball_xy: ``[N, 2]`` the ball's ``x, y`` in pitch metres; a ball in the air is judged by
            the point below it, which is what the ground quad can say.
        vcam_frame: ``[M]`` frames that have a virtual-camera quad.
        vcam_quad: ``[M, 4, 2]`` the quads.

    Returns:
        Scores where frames without a quad count as not in view (the camera produced nothing
        there) and are also reported as ``missing_frames``.
    """
    order = np.argsort(vcam_frame, kind="stable")
    sorted_frames = vcam_frame[order]
    at = np.clip(np.searchsorted(sorted_frames, ball_frame), 0, max(len(order) - 1, 0))
    has_quad = (
        sorted_frames[at] == ball_frame if len(order) else np.zeros(len(ball_frame), np.bool_)
    )
    inside = np.zeros(len(ball_frame), dtype=np.bool_)
    if has_quad.any():
        quads = np.asarray(vcam_quad)[order][at[has_quad]]
        inside[has_quad] = points_in_quads(np.asarray(ball_xy)[has_quad], quads)
    return VcamScores(
        frames=len(ball_frame), in_view=int(inside.sum()), missing_frames=int((~has_quad).sum())
    )


@dataclass(frozen=True)
class PathQuality:
    """How a virtual camera path frames the play (`bench.vcam_modes`, the issue's figures).

    Attributes:
        in_play_frames: Frames where the true ball is in play.
        ball_in_view_share: Share of them whose true ball (its ground point) is in the view's
            ground footprint.
        median_footprint_m2: Area of the view's ground footprint in the median frame.
        jerk: RMS jerk of the view's direction (pan and tilt, radians per second cubed).
    """

    in_play_frames: int
    ball_in_view_share: float | None
    median_footprint_m2: float
    jerk: float


def rms_jerk(angles: npt.NDArray[np.floating], fps: float) -> float:
    """RMS of the third time derivative of ``[F, K]`` angles (radians), radians/s³."""
    a = np.asarray(angles, np.float64)
    if a.shape[0] < 4:
        return 0.0
    third = np.diff(a, n=3, axis=0) * fps**3
    return float(np.sqrt(np.mean(np.sum(third * third, axis=1))))


def path_quality(
    quads: npt.NDArray[np.floating],
    angles: npt.NDArray[np.floating],
    fps: float,
    ball_frame: npt.NDArray[np.integer],
    ball_xy: npt.NDArray[np.floating],
) -> PathQuality:
    """Score one path: ``quads`` ``[F, 4, 2]`` ground footprints per frame, ``angles``
    ``[F, 2]`` pan and tilt (radians), the true in-play ball's frames and ground points."""
    q = np.asarray(quads, np.float64)
    x, y = q[..., 0], q[..., 1]
    area = 0.5 * np.abs(np.sum(x * np.roll(y, -1, axis=1) - y * np.roll(x, -1, axis=1), axis=1))
    area = np.where(np.isfinite(area), area, np.inf)
    scores = ball_in_view(
        np.asarray(ball_frame), np.asarray(ball_xy), np.arange(len(q)), q.astype(np.float32)
    )
    return PathQuality(
        in_play_frames=scores.frames,
        ball_in_view_share=scores.ball_in_view_share,
        median_footprint_m2=float(np.median(area)) if len(area) else float("nan"),
        jerk=rms_jerk(angles, fps),
    )
