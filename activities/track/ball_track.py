"""The match ball's track: what the track stage hands to the analytics, the camera and `eval`.

One row per frame of the match, whether or not the ball is seen, so that "not visible" is said
rather than left to a missing row. Positions are pitch metres (`synth.types`' frame: ``x`` along
the near touchline 0..105, ``y`` towards the far touchline 0..68) of the ball's centre projected
onto the grass, and the centre's height above the grass (a lofted ball is not where its image
meets the grass).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class BallTrack:
    """The ball at every frame of a match (or of a slice of it); row ``i`` is one frame.

    Attributes:
        frame: ``[N]`` match frame index, ascending, no gaps.
        xy: ``[N, 2]`` pitch metres of the point of the grass under the ball's centre; NaN
            where ``visible`` is false.
        z: ``[N]`` height of the ball's centre above the grass, metres (the ball's radius when
            it rolls); NaN where ``visible`` is false.
        visible: ``[N]`` the tracker reports where the ball is: seen, or bridged through a short
            occlusion (``observed`` tells which).
        observed: ``[N]`` a ball candidate supports the position in this frame; ``visible`` and
            not ``observed`` is a position bridged between two sightings.
        in_play: ``[N]`` the ball is in play (inside the lines, play not stopped); false where
            it is not visible.
        confidence: ``[N]`` 0..1, how sure the tracker is that this is the match ball; 0 where it
            is not visible.
    """

    frame: Int64Array
    xy: Float64Array
    z: Float64Array
    visible: BoolArray
    observed: BoolArray
    in_play: BoolArray
    confidence: Float64Array

    def __post_init__(self) -> None:
        n = self.frame.shape[0]
        if self.xy.shape != (n, 2):
            raise ValueError("xy must be [N, 2]")
        for name in ("z", "visible", "observed", "in_play", "confidence"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must be [N]")

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    @property
    def reported(self) -> BoolArray:
        """Frames where a ball in play is reported: what a viewer or a statistic should use."""
        return self.visible & self.in_play

    @classmethod
    def not_seen(cls, first_frame: int, frames: int) -> BallTrack:
        """A track that never sees the ball (no candidates, or a match without a ball)."""
        return cls(
            frame=np.arange(first_frame, first_frame + frames, dtype=np.int64),
            xy=np.full((frames, 2), np.nan),
            z=np.full(frames, np.nan),
            visible=np.zeros(frames, np.bool_),
            observed=np.zeros(frames, np.bool_),
            in_play=np.zeros(frames, np.bool_),
            confidence=np.zeros(frames),
        )

    def slice_frames(self, start: int, end: int) -> BallTrack:
        """The rows of frames ``[start, end)``."""
        lo, hi = np.searchsorted(self.frame, [start, end])
        part = slice(int(lo), int(hi))
        return BallTrack(
            frame=self.frame[part],
            xy=self.xy[part],
            z=self.z[part],
            visible=self.visible[part],
            observed=self.observed[part],
            in_play=self.in_play[part],
            confidence=self.confidence[part],
        )
