"""The pure part of `polyvision overlay`: a frame's tracks drawn on the panorama.

A track point is where the track stage put a person's feet on the pitch (metres); projecting it
back into the panorama with the stitch stage's own model (`pitch_to_panorama`) puts the marker
where the tracker believed the feet were, so a marker beside a player's feet shows an error of
detection, ground mapping or tracking, not of the drawing. Everything here is a function of its
arguments (no stores, no files), so the drawing is tested on a synthetic frame.

Markers: a disc for an outfield player (or an unknown role), a square with a white outline for
a goalkeeper, a yellow triangle for the referee; fill colour by team (home, away, none), the
track id under the marker, and a trail of the track's last positions that thickens towards the
present. A legend in the top-left corner names them, with the frame number and counts.

The ball (``ball_points``, when given): a ring where the panorama shows the ball's centre (its
pitch point lifted to its height, so a lofted ball is drawn in the air, with a thin line down to
the grass under it), and a trail of its last second that fades into the picture with age. A
ball seen in this frame is a solid ring with a dot; a ball bridged between sightings (visible,
not observed) a dashed, hollow ring; a ball out of play is grey.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from activities.stitch.panorama import PanoramaModel, pitch_to_panorama
from activities.track.ball_track import BallTrack
from polyvision.roles import (
    ROLE_GOALKEEPER,
    ROLE_REFEREE,
    TEAM_AWAY,
    TEAM_HOME,
    TEAM_UNKNOWN,
)

Image = npt.NDArray[np.uint8]
Float64Array = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]
Colour = tuple[int, int, int]

# BGR. Home red and away blue (the synthetic match's away kit is blue); no team grey.
TEAM_COLOURS: Final[dict[int, Colour]] = {
    TEAM_HOME: (40, 40, 225),
    TEAM_AWAY: (225, 140, 30),
    TEAM_UNKNOWN: (165, 165, 165),
}
REFEREE_COLOUR: Final[Colour] = (0, 215, 255)
"""The referee's triangle: yellow, whatever team code the referee's track carries."""
GOALKEEPER_OUTLINE: Final[Colour] = (255, 255, 255)
BALL_COLOUR: Final[Colour] = (255, 0, 255)
"""The ball in play: magenta, a colour no kit, line or grass has."""
BALL_OUT_COLOUR: Final[Colour] = (150, 150, 150)
"""The ball out of play: grey."""
BALL_AIR_M: Final = 0.5
"""Above this height the ball gets a line down to the grass under it."""
_DARK: Final[Colour] = (20, 20, 20)
_WHITE: Final[Colour] = (255, 255, 255)
_FONT: Final = cv2.FONT_HERSHEY_SIMPLEX
_REFERENCE_WIDTH: Final = 1920
"""Marker and text sizes are chosen for an image this wide and scale with the image."""


@dataclass(frozen=True)
class TrackTable:
    """Track points, one row per track and frame, sorted by frame and then track id.

    Attributes:
        frame: ``[N]`` match frame numbers.
        track_id: ``[N]`` the identities the track stage gave.
        team: ``[N]`` team codes (`polyvision.roles`: 1 home, 0 away, -1 none).
        role: ``[N]`` role codes (0 outfield, 1 goalkeeper, 2 referee, -1 unknown).
        pitch: ``[N, 2]`` pitch positions ``(x, y)`` in metres.
    """

    frame: Int64Array
    track_id: Int64Array
    team: Int64Array
    role: Int64Array
    pitch: Float64Array

    @classmethod
    def from_columns(cls, columns: Mapping[str, npt.ArrayLike]) -> TrackTable:
        """Rows from ``track_points`` columns (``frame``, ``track_id``, ``team``, ``role``,
        ``pitch_x``, ``pitch_y``), in any order: sorted here, since `at` and `trails` search
        by frame."""
        frame = np.asarray(columns["frame"], dtype=np.int64)
        track_id = np.asarray(columns["track_id"], dtype=np.int64)
        order = np.lexsort((track_id, frame))
        pitch = np.column_stack(
            [
                np.asarray(columns["pitch_x"], dtype=np.float64),
                np.asarray(columns["pitch_y"], dtype=np.float64),
            ]
        ).reshape(-1, 2)
        return cls(
            frame=frame[order],
            track_id=track_id[order],
            team=np.asarray(columns["team"], dtype=np.int64)[order],
            role=np.asarray(columns["role"], dtype=np.int64)[order],
            pitch=pitch[order],
        )

    def __len__(self) -> int:
        return len(self.frame)

    def rows(self, first: int, last: int) -> TrackTable:
        """The rows of frames ``first`` to ``last`` (both included)."""
        lo = int(np.searchsorted(self.frame, first, side="left"))
        hi = int(np.searchsorted(self.frame, last, side="right"))
        return TrackTable(
            self.frame[lo:hi],
            self.track_id[lo:hi],
            self.team[lo:hi],
            self.role[lo:hi],
            self.pitch[lo:hi],
        )

    def at(self, frame: int) -> TrackTable:
        """The rows of one frame."""
        return self.rows(frame, frame)


def trails(table: TrackTable, frame: int, length: int) -> dict[int, Float64Array]:
    """Where each track of ``frame`` was in its last ``length`` frames, oldest first.

    Only tracks present at ``frame`` get a trail (a track that ended has nothing to point at);
    frames a track missed are simply absent from its trail.

    Returns:
        Track id → ``[K, 2]`` pitch positions (metres), ending with the one at ``frame``.
    """
    window = table.rows(frame - max(1, length) + 1, frame)
    present = window.track_id[window.frame == frame]
    keep = np.isin(window.track_id, present)
    ids, frames, pitch = window.track_id[keep], window.frame[keep], window.pitch[keep]
    order = np.lexsort((frames, ids))
    ids, pitch = ids[order], pitch[order]
    starts = np.flatnonzero(np.diff(ids)) + 1
    return {
        int(group_ids[0]): group
        for group_ids, group in zip(np.split(ids, starts), np.split(pitch, starts), strict=True)
        if len(group_ids)
    }


def image_points(
    model: PanoramaModel, pitch: npt.ArrayLike, shape: tuple[int, ...]
) -> Float64Array:
    """Pixel positions in an image of ``shape`` (the panorama, resized) of pitch points.

    Returns:
        ``[N, 2]`` ``(x, y)`` pixels; NaN where the panorama has no pixel for the point.
    """
    height, width = shape[:2]
    pixels = pitch_to_panorama(model, np.asarray(pitch, dtype=np.float64).reshape(-1, 2))
    scale = np.array([width / model.width, height / model.height], dtype=np.float64)
    return np.asarray(pixels * scale, dtype=np.float64)


def ball_image_points(
    model: PanoramaModel, xy: npt.ArrayLike, z: npt.ArrayLike, shape: tuple[int, ...]
) -> Float64Array:
    """Pixel positions in an image of ``shape`` of the ball's centre: pitch ``xy`` at height
    ``z`` (metres; NaN reads as on the grass). NaN where there is no pixel."""
    height, width = shape[:2]
    ground = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    lift = np.nan_to_num(np.asarray(z, dtype=np.float64).reshape(-1), nan=0.0)
    pixels = pitch_to_panorama(model, np.column_stack([ground, lift]))
    scale = np.array([width / model.width, height / model.height], dtype=np.float64)
    return np.asarray(pixels * scale, dtype=np.float64)


@dataclass(frozen=True)
class _Style:
    """Sizes in pixels for an image of a given width."""

    radius: int
    line: int
    font_scale: float
    font_thickness: int

    @classmethod
    def for_width(cls, width: int) -> _Style:
        unit = min(2.0, max(0.5, width / _REFERENCE_WIDTH))
        return cls(
            radius=max(3, round(7 * unit)),
            line=max(1, round(2 * unit)),
            font_scale=max(0.35, 0.5 * unit),
            font_thickness=max(1, round(unit)),
        )

    @property
    def ball_radius(self) -> int:
        """The ball's ring: wider than a player's marker, so a ball at a player's feet shows."""
        return 2 * self.radius

    @property
    def ball_line(self) -> int:
        return max(2, self.line + 1)


def _pt(xy: Float64Array) -> tuple[int, int]:
    return round(float(xy[0])), round(float(xy[1]))


def _team_colour(team: int) -> Colour:
    return TEAM_COLOURS.get(int(team), TEAM_COLOURS[TEAM_UNKNOWN])


def _marker(image: Image, centre: tuple[int, int], team: int, role: int, style: _Style) -> None:
    """One person's marker at their ground point: shape by role, fill by team."""
    x, y = centre
    r = style.radius
    if role == ROLE_REFEREE:
        h = round(r * 1.3)
        triangle = np.array([[x, y - h], [x - h, y + r], [x + h, y + r]], dtype=np.int32)
        cv2.fillPoly(image, [triangle], REFEREE_COLOUR, cv2.LINE_AA)
        cv2.polylines(image, [triangle], True, _DARK, max(1, style.line // 2), cv2.LINE_AA)
    elif role == ROLE_GOALKEEPER:
        cv2.rectangle(image, (x - r, y - r), (x + r, y + r), _team_colour(team), cv2.FILLED)
        cv2.rectangle(image, (x - r, y - r), (x + r, y + r), GOALKEEPER_OUTLINE, style.line)
    else:
        cv2.circle(image, centre, r, _team_colour(team), cv2.FILLED, cv2.LINE_AA)
        cv2.circle(image, centre, r, _DARK, max(1, style.line // 2), cv2.LINE_AA)


def _text(
    image: Image, text: str, origin: tuple[int, int], style: _Style, scale: float = 1.0
) -> None:
    """White text with a dark outline: readable on grass, lines and kits alike."""
    size, thickness = style.font_scale * scale, style.font_thickness
    cv2.putText(image, text, origin, _FONT, size, _DARK, thickness + 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, _FONT, size, _WHITE, thickness, cv2.LINE_AA)


def _label(image: Image, text: str, centre: tuple[int, int], style: _Style) -> None:
    """The track id, centred under the marker (above would cover the player)."""
    (w, h), _ = cv2.getTextSize(text, _FONT, style.font_scale, style.font_thickness)
    _text(image, text, (centre[0] - w // 2, centre[1] + style.radius + h + 3), style)


def _trail(image: Image, points: Float64Array, colour: Colour, style: _Style) -> None:
    """A polyline thickening from the oldest position to the newest."""
    points = points[np.isfinite(points).all(axis=1)]
    segments = len(points) - 1
    for index in range(segments):
        thickness = 1 + round(style.line * index / max(1, segments - 1))
        cv2.line(image, _pt(points[index]), _pt(points[index + 1]), colour, thickness, cv2.LINE_AA)


def _ball_colour(in_play: bool) -> Colour:
    return BALL_COLOUR if in_play else BALL_OUT_COLOUR


def _ball_ring(
    image: Image, centre: tuple[int, int], colour: Colour, observed: bool, style: _Style
) -> None:
    """The ball's ring: solid with a centre dot when seen, dashed and hollow when bridged."""
    r, thickness = style.ball_radius, style.ball_line
    if observed:
        cv2.circle(image, centre, r, colour, thickness, cv2.LINE_AA)
        cv2.circle(image, centre, max(1, style.line), colour, cv2.FILLED, cv2.LINE_AA)
        return
    # Four dashes of 45 degrees with 45-degree gaps (0-45, 90-135, ...).
    for start in range(0, 360, 90):
        cv2.ellipse(image, centre, (r, r), 0, start, start + 45, colour, thickness, cv2.LINE_AA)


def _ball_trail(image: Image, pixels: Float64Array, ball: BallTrack, style: _Style) -> None:
    """The ball's recent path, fading with age: each step blended into the picture by how
    recent it is (the newest fully drawn); steps out of play are grey; a frame where the ball
    was not visible breaks the trail."""
    n = len(ball)
    if n < 2:
        return
    height, width = image.shape[:2]
    usable = ball.visible & np.isfinite(pixels).all(axis=1)
    consecutive = np.diff(ball.frame) == 1
    masks = {True: np.zeros((height, width), np.uint8), False: np.zeros((height, width), np.uint8)}
    for index in range(n - 1):  # oldest first: a newer step covers an older one
        if not (usable[index] and usable[index + 1] and consecutive[index]):
            continue
        alpha = round(255 * (index + 1) / (n - 1))
        cv2.line(
            masks[bool(ball.in_play[index + 1])],
            _pt(pixels[index]),
            _pt(pixels[index + 1]),
            alpha,
            style.line + 1,
            cv2.LINE_AA,
        )
    for in_play, mask in masks.items():
        rows, cols = np.nonzero(mask)
        if not rows.size:
            continue
        weight = (mask[rows, cols].astype(np.float32) / 255.0)[:, None]
        colour = np.asarray(_ball_colour(in_play), dtype=np.float32)
        blended = image[rows, cols].astype(np.float32) * (1.0 - weight) + colour * weight
        image[rows, cols] = np.clip(np.round(blended), 0, 255).astype(np.uint8)


def _draw_ball(
    image: Image, model: PanoramaModel, ball: BallTrack, frame: int | None, style: _Style
) -> None:
    """The ball's trail and, where it is visible at ``frame``, its ring."""
    if not len(ball):
        return
    pixels = ball_image_points(model, ball.xy, ball.z, image.shape)
    _ball_trail(image, pixels, ball, style)
    if frame is None:
        now = len(ball) - 1
    else:
        now = int(np.searchsorted(ball.frame, frame))
        if now >= len(ball) or int(ball.frame[now]) != frame:
            return
    if not ball.visible[now]:
        return
    centre = pixels[now]
    if not _inside(centre, image.shape, 2.0 * style.ball_radius):
        return
    colour = _ball_colour(bool(ball.in_play[now]))
    if float(np.nan_to_num(ball.z[now])) > BALL_AIR_M:
        ground = image_points(model, ball.xy[now : now + 1], image.shape)[0]
        if np.isfinite(ground).all():
            cv2.line(image, _pt(ground), _pt(centre), colour, 1, cv2.LINE_AA)
            cv2.circle(image, _pt(ground), max(1, style.line), colour, cv2.FILLED, cv2.LINE_AA)
    _ball_ring(image, _pt(centre), colour, bool(ball.observed[now]), style)


def _inside(xy: Float64Array, shape: tuple[int, ...], margin: float) -> bool:
    height, width = shape[:2]
    x, y = float(xy[0]), float(xy[1])
    return (
        bool(np.isfinite(xy).all())
        and -margin <= x < width + margin
        and -margin <= y < height + margin
    )


def _legend(
    image: Image,
    points: TrackTable,
    frame: int | None,
    trail_seconds: float,
    style: _Style,
    ball: bool = False,
) -> None:
    """The legend in the top-left corner: frame, what each marker means, and counts."""
    referee = points.role == ROLE_REFEREE
    teams = np.where(referee, -2, points.team)
    counts = {code: int(np.count_nonzero(teams == code)) for code in (TEAM_HOME, TEAM_AWAY)}
    no_team = int(np.count_nonzero(~np.isin(teams, [TEAM_HOME, TEAM_AWAY, -2])))
    rows: list[tuple[str, dict[str, Any]]] = [
        (f"home ({counts[TEAM_HOME]})", {"team": TEAM_HOME, "role": 0}),
        (f"away ({counts[TEAM_AWAY]})", {"team": TEAM_AWAY, "role": 0}),
        (f"no team ({no_team})", {"team": TEAM_UNKNOWN, "role": 0}),
        ("goalkeeper", {"team": TEAM_UNKNOWN, "role": ROLE_GOALKEEPER}),
        (
            f"referee ({int(np.count_nonzero(referee))})",
            {"team": TEAM_UNKNOWN, "role": ROLE_REFEREE},
        ),
        (f"last {trail_seconds:g} s", {}),
    ]
    if ball:
        rows.append(("ball (dashed: bridged, grey: out)", {"ball": True}))
    title = f"frame {frame}" if frame is not None else "tracks"
    (_, text_h), _ = cv2.getTextSize("Ag", _FONT, style.font_scale, style.font_thickness)
    row_h = max(text_h, 2 * style.radius) + max(4, style.radius)
    widths = [
        cv2.getTextSize(text, _FONT, style.font_scale, style.font_thickness)[0][0]
        for text, _ in rows
    ]
    pad = max(4, style.radius)
    box_w = pad * 3 + 3 * style.radius + max(widths)
    box_h = pad * 2 + row_h * (len(rows) + 1)
    height, width = image.shape[:2]
    box_w, box_h = min(box_w, width), min(box_h, height)
    region = image[:box_h, :box_w]
    region[:] = (region.astype(np.float32) * 0.35).astype(np.uint8)
    _text(image, title, (pad, pad + text_h), style)
    for index, (text, marker) in enumerate(rows):
        centre_y = pad + row_h * (index + 1) + row_h // 2
        centre = (pad + 2 * style.radius, centre_y)
        if "ball" in marker:
            _ball_ring(image, centre, BALL_COLOUR, True, style)
        elif marker:
            _marker(image, centre, int(marker["team"]), int(marker["role"]), style)
        else:
            sample = np.array(
                [[centre[0] - 2 * style.radius + i * style.radius, centre_y] for i in range(5)],
                dtype=np.float64,
            )
            _trail(image, sample, _WHITE, style)
        _text(image, text, (pad * 2 + 4 * style.radius, centre_y + text_h // 2), style)


def draw_overlay(
    image: Image,
    points: TrackTable,
    trail_points: Mapping[int, Float64Array],
    model: PanoramaModel,
    *,
    frame: int | None = None,
    trail_seconds: float = 1.0,
    ball: BallTrack | None = None,
) -> Image:
    """A copy of ``image`` with the frame's track points, their trails and a legend drawn.

    Args:
        image: ``[H, W, 3]`` BGR panorama frame, at the model's size or resized (uniformly):
            points are projected at the model's size and scaled to the image.
        points: The track points of this frame.
        trail_points: Track id → its recent pitch positions, oldest first (`trails`); a track
            without an entry gets no trail.
        model: The panorama model the stitch stage made the frame with.
        frame: The frame number the legend shows.
        trail_seconds: How long the trails are, for the legend.
        ball: The ball's rows of the trail, ending at ``frame`` (`BallTrack.slice_frames`),
            oldest first; the ring is drawn where the row of ``frame`` (the last row when
            ``frame`` is None) is visible. None: no ball, and no ball in the legend.

    Returns:
        The drawn copy; ``image`` is left as it was.
    """
    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    style = _Style.for_width(out.shape[1])
    margin = 4.0 * style.radius
    centres = image_points(model, points.pitch, out.shape)
    for track_id, team in zip(points.track_id, points.team, strict=True):
        trail = trail_points.get(int(track_id))
        if trail is not None and len(trail) > 1:
            _trail(out, image_points(model, trail, out.shape), _team_colour(int(team)), style)
    drawn: list[tuple[int, tuple[int, int]]] = []
    for index, centre in enumerate(centres):
        if not _inside(centre, out.shape, margin):
            continue
        xy = _pt(centre)
        _marker(out, xy, int(points.team[index]), int(points.role[index]), style)
        drawn.append((int(points.track_id[index]), xy))
    if ball is not None:  # over the people: the ball is what the eye looks for
        _draw_ball(out, model, ball, frame, style)
    for track_id, xy in drawn:  # labels last: no marker covers an id
        _label(out, str(track_id), xy, style)
    _legend(out, points, frame, trail_seconds, style, ball=ball is not None)
    return out
