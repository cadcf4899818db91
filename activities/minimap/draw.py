"""Drawing the match from above: the pitch, a dot per person in team colours, and the ball.

Pure: positions in pitch metres in, BGR images out. The pitch is drawn once
(:func:`pitch_canvas`) and each frame is a copy with the dots on it (:func:`draw_frame`).
:class:`MinimapScene` holds a match's positions sorted by frame and answers the dots of any
frame, holding a person's last position for a moment where tracking has a gap (the detector may
run on every few frames only) so dots do not blink.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from polyvision.geometry.pitch import PITCH_LENGTH_M, PITCH_WIDTH_M

BgrImage = npt.NDArray[np.uint8]
Colour = tuple[int, int, int]

GRASS: Colour = (60, 130, 60)
LINES: Colour = (235, 245, 235)
TEAM_COLOURS: tuple[Colour, Colour] = ((200, 90, 30), (40, 40, 220))
"""Team 0 blue, team 1 red (BGR), unless the catalog gives kit colours."""
OTHER_COLOUR: Colour = (40, 220, 240)
"""Referees and people of unknown team: yellow."""
BALL_COLOUR: Colour = (255, 255, 255)
HOLD_S = 0.5
"""How long a dot stays at its last position while its person is not reported."""


@dataclass(frozen=True)
class PitchFrame:
    """Where the pitch sits in the image: ``pixel = offset + metres * scale``."""

    size: tuple[int, int]
    scale: float
    offset: tuple[float, float]

    @classmethod
    def fit(cls, size: tuple[int, int], margin_m: float = 3.0) -> PitchFrame:
        width, height = size
        scale = min(
            width / (PITCH_LENGTH_M + 2 * margin_m), height / (PITCH_WIDTH_M + 2 * margin_m)
        )
        offset = (
            (width - PITCH_LENGTH_M * scale) / 2,
            (height - PITCH_WIDTH_M * scale) / 2,
        )
        return cls(size, scale, offset)

    def to_pixels(self, xy: npt.ArrayLike) -> npt.NDArray[np.float64]:
        points = np.asarray(xy, np.float64).reshape(-1, 2)
        pixels: npt.NDArray[np.float64] = points * self.scale + np.asarray(self.offset)
        return pixels


def hex_colour(value: str | None, default: Colour) -> Colour:
    """``#rrggbb`` as a BGR tuple; ``default`` for None or anything else."""
    if not value or len(value) != 7 or value[0] != "#":
        return default
    try:
        red, green, blue = (int(value[i : i + 2], 16) for i in (1, 3, 5))
    except ValueError:
        return default
    return (blue, green, red)


def pitch_canvas(frame: PitchFrame) -> BgrImage:
    """The empty pitch: grass, touch and goal lines, halfway line, centre circle, boxes."""
    width, height = frame.size
    image = np.empty((height, width, 3), np.uint8)
    image[...] = GRASS

    def px(x: float, y: float) -> tuple[int, int]:
        u, v = frame.to_pixels([x, y])[0]
        return round(u), round(v)

    thickness = max(1, round(frame.scale * 0.25))

    def box(a: tuple[float, float], b: tuple[float, float]) -> None:
        cv2.rectangle(image, px(*a), px(*b), LINES, thickness, cv2.LINE_AA)

    box((0, 0), (PITCH_LENGTH_M, PITCH_WIDTH_M))
    half = PITCH_LENGTH_M / 2
    cv2.line(image, px(half, 0), px(half, PITCH_WIDTH_M), LINES, thickness, cv2.LINE_AA)
    centre = px(half, PITCH_WIDTH_M / 2)
    cv2.circle(image, centre, round(9.15 * frame.scale), LINES, thickness, cv2.LINE_AA)
    mid = PITCH_WIDTH_M / 2
    for goal_x, inward in ((0.0, 1.0), (PITCH_LENGTH_M, -1.0)):
        for depth, spread in ((16.5, 20.16), (5.5, 9.16)):  # penalty and goal areas
            box((goal_x, mid - spread), (goal_x + inward * depth, mid + spread))
        box((goal_x, mid - 3.66), (goal_x - inward * 1.5, mid + 3.66))  # the goal
        cv2.circle(image, px(goal_x + inward * 11.0, mid), thickness, LINES, -1)
    return image


def draw_frame(
    canvas: BgrImage,
    frame: PitchFrame,
    people_xy: npt.NDArray[np.float64],
    people_colours: list[Colour],
    ball_xy: npt.NDArray[np.float64] | None,
    out: BgrImage | None = None,
) -> BgrImage:
    """``canvas`` with a dot per person and the ball on top (into ``out`` when given)."""
    image = out if out is not None else np.empty_like(canvas)
    image[...] = canvas
    radius = max(2, round(frame.scale * 0.9))
    for (u, v), colour in zip(frame.to_pixels(people_xy), people_colours, strict=True):
        centre = (round(u), round(v))
        cv2.circle(image, centre, radius, colour, -1, cv2.LINE_AA)
        cv2.circle(image, centre, radius, (20, 20, 20), 1, cv2.LINE_AA)
    if ball_xy is not None:
        (u, v) = frame.to_pixels(ball_xy)[0]
        cv2.circle(image, (round(u), round(v)), max(2, radius // 2 + 1), BALL_COLOUR, -1)
        cv2.circle(image, (round(u), round(v)), max(2, radius // 2 + 1), (0, 0, 0), 1)
    return image


class MinimapScene:
    """A match's people and ball by frame, answering what to draw at any frame.

    Args:
        frames: Frame of each person row.
        track_ids: Track of each row.
        teams: Team of each row (0, 1; anything else draws as "other").
        xy: ``[n, 2]`` pitch metres of each row (rows with NaN are ignored).
        ball_frames: Frames where the ball is reported.
        ball_xy: ``[m, 2]`` its pitch metres.
        fps: Frame rate (sets the hold of `HOLD_S`).
        team_colours: Dot colours of teams 0 and 1.
    """

    def __init__(
        self,
        frames: npt.ArrayLike,
        track_ids: npt.ArrayLike,
        teams: npt.ArrayLike,
        xy: npt.ArrayLike,
        ball_frames: npt.ArrayLike,
        ball_xy: npt.ArrayLike,
        fps: float,
        team_colours: tuple[Colour, Colour] = TEAM_COLOURS,
    ) -> None:
        points = np.asarray(xy, np.float64).reshape(-1, 2)
        keep = np.isfinite(points).all(axis=1)
        order = np.argsort(np.asarray(frames, np.int64)[keep], kind="stable")
        self._frames = np.asarray(frames, np.int64)[keep][order]
        self._tracks = np.asarray(track_ids, np.int64)[keep][order]
        self._teams = np.asarray(teams, np.int64)[keep][order]
        self._xy = points[keep][order]
        ball = np.asarray(ball_xy, np.float64).reshape(-1, 2)
        ball_keep = np.isfinite(ball).all(axis=1)
        ball_order = np.argsort(np.asarray(ball_frames, np.int64)[ball_keep], kind="stable")
        self._ball_frames = np.asarray(ball_frames, np.int64)[ball_keep][ball_order]
        self._ball_xy = ball[ball_keep][ball_order]
        self._hold = max(0, round(HOLD_S * fps))
        self._colours = team_colours

    def people(self, frame: int) -> tuple[npt.NDArray[np.float64], list[Colour]]:
        """Positions and colours of the people to draw at ``frame``: each track's latest
        report within the hold."""
        lo = np.searchsorted(self._frames, frame - self._hold, side="left")
        hi = np.searchsorted(self._frames, frame, side="right")
        if hi <= lo:
            return np.zeros((0, 2)), []
        tracks = self._tracks[lo:hi]
        # The last row of each track in the window is its latest report.
        reversed_tracks = tracks[::-1]
        _, first_in_reversed = np.unique(reversed_tracks, return_index=True)
        rows = lo + (len(tracks) - 1 - first_in_reversed)
        colours = [
            self._colours[team] if team in (0, 1) else OTHER_COLOUR
            for team in self._teams[rows].tolist()
        ]
        return self._xy[rows], colours

    def ball(self, frame: int) -> npt.NDArray[np.float64] | None:
        """The ball's latest report within the hold, or None."""
        index = np.searchsorted(self._ball_frames, frame, side="right") - 1
        if index < 0 or frame - self._ball_frames[index] > self._hold:
            return None
        ball: npt.NDArray[np.float64] = self._ball_xy[index]
        return ball
