"""How well the ball was tracked: found where it is, not invented where it is not, its height.

Everything is counted per frame of the clip (``0 .. truth.frames - 1``):

* a frame **has a ball** when the truth's ball row (team ``ball``) is visible in at least one
  camera and in play (with no camera columns in the truth, every ball row counts as visible);
* a frame where **we report** a ball is one whose results row is ``visible`` and ``in_play``; a
  frame without a results row reports nothing.

Positions are compared in the ground plane (``x, y``): the height is scored on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from evaluation.formats import BallResults, Truth

#: Ground distances (metres) under which a reported ball counts as found.
NEAR_M = 2.0
CLOSE_M = 1.0
#: Truth heights above which the ball is "in the air" for the height error.
HIGH_M = 1.0


@dataclass(frozen=True)
class BallScores:
    """The ball's scores over one clip.

    Attributes:
        frames: Frames in the clip.
        ball_frames: Frames with a ball (visible in a camera and in play): the denominator of
            the found shares.
        within_2m: Of those, frames where we report a ball within 2 m (ground plane).
        within_1m: Of those, frames where we report a ball within 1 m.
        no_ball_frames: Frames without a ball (no truth row, not visible in any camera, or
            out of play).
        false_reports: Of those, frames where we report a ball anyway.
        high_frames: Ball frames with the truth ball above 1 m that we found within 2 m: the
            frames behind the height error.
        height_mae_m: Mean absolute height error over ``high_frames``; None when there are none.
        in_play_frames: Frames where the truth ball is visible in a camera and we report a
            position (in play or not): the frames behind the in/out-of-play agreement.
        in_play_agree: Of those, frames where our in-play flag equals the truth's.
    """

    frames: int
    ball_frames: int
    within_2m: int
    within_1m: int
    no_ball_frames: int
    false_reports: int
    high_frames: int
    height_mae_m: float | None
    in_play_frames: int
    in_play_agree: int

    @property
    def found_2m_share(self) -> float | None:
        """Share of ball frames found within 2 m; None without ball frames."""
        return self.within_2m / self.ball_frames if self.ball_frames else None

    @property
    def found_1m_share(self) -> float | None:
        """Share of ball frames found within 1 m; None without ball frames."""
        return self.within_1m / self.ball_frames if self.ball_frames else None

    @property
    def false_report_share(self) -> float | None:
        """Share of the frames without a ball in which we report one."""
        return self.false_reports / self.no_ball_frames if self.no_ball_frames else None

    @property
    def false_report_share_all(self) -> float | None:
        """False reports as a share of every frame of the clip."""
        return self.false_reports / self.frames if self.frames else None

    @property
    def in_play_agreement(self) -> float | None:
        """Share of ``in_play_frames`` where in/out of play agrees with the truth."""
        return self.in_play_agree / self.in_play_frames if self.in_play_frames else None


def _per_frame(
    frames: int, frame: npt.NDArray[np.integer], *values: npt.NDArray[Any]
) -> tuple[npt.NDArray[np.bool_], list[npt.NDArray[Any]]]:
    """Spread rows onto the clip's frames: which frames have a row, and each value there.

    Rows outside the clip are dropped; a frame given twice keeps its first row.
    """
    f = np.asarray(frame, dtype=np.int64)
    keep = np.flatnonzero((f >= 0) & (f < frames))
    # Reversed so that, with fancy assignment's last-write-wins, the first row stays.
    keep = keep[::-1]
    has = np.zeros(frames, dtype=np.bool_)
    has[f[keep]] = True
    out: list[npt.NDArray[Any]] = []
    for value in values:
        array = np.asarray(value)
        fill = np.nan if array.dtype.kind == "f" else False
        spread = np.full((frames, *array.shape[1:]), fill, dtype=array.dtype)
        spread[f[keep]] = array[keep]
        out.append(spread)
    return has, out


def score_ball(truth: Truth, ball: BallResults) -> BallScores:
    """Score an exported ball track against the truth's ball (see the module docstring)."""
    frames = truth.frames
    rows = truth.is_ball
    assert truth.in_play is not None  # set by Truth.__post_init__
    if truth.cameras:
        seen = np.logical_or.reduce([truth.visible[c][rows] for c in truth.cameras])
    else:
        seen = np.ones(int(rows.sum()), dtype=np.bool_)
    has_truth, (true_pos, true_seen, true_play) = _per_frame(
        frames,
        truth.frame[rows],
        truth.position[rows].astype(np.float64),
        seen,
        truth.in_play[rows],
    )
    true_seen = true_seen.astype(np.bool_) & has_truth
    has_ball = true_seen & true_play.astype(np.bool_)

    has_ours, (our_pos, our_visible, our_play) = _per_frame(
        frames,
        ball.frame,
        ball.position.astype(np.float64),
        ball.visible,
        ball.in_play,
    )
    our_visible = our_visible.astype(np.bool_) & has_ours
    reported = our_visible & our_play.astype(np.bool_)

    with np.errstate(invalid="ignore"):
        ground = np.hypot(our_pos[:, 0] - true_pos[:, 0], our_pos[:, 1] - true_pos[:, 1])
    # NaN distances (no position) compare false: not found.
    near = has_ball & reported & (ground <= NEAR_M)
    close = has_ball & reported & (ground <= CLOSE_M)
    no_ball = ~has_ball
    high = near & (true_pos[:, 2] > HIGH_M) & np.isfinite(our_pos[:, 2])
    height_error = np.abs(our_pos[high, 2] - true_pos[high, 2])
    judged = true_seen & our_visible
    agree = judged & (our_play.astype(np.bool_) == true_play.astype(np.bool_))
    return BallScores(
        frames=frames,
        ball_frames=int(has_ball.sum()),
        within_2m=int(near.sum()),
        within_1m=int(close.sum()),
        no_ball_frames=int(no_ball.sum()),
        false_reports=int((no_ball & reported).sum()),
        high_frames=int(high.sum()),
        height_mae_m=float(height_error.mean()) if height_error.size else None,
        in_play_frames=int(judged.sum()),
        in_play_agree=int(agree.sum()),
    )
