"""Drawing the match from above: where things land, colours, and the hold over gaps."""

from __future__ import annotations

import numpy as np

from activities.minimap.draw import (
    BALL_COLOUR,
    GRASS,
    OTHER_COLOUR,
    TEAM_COLOURS,
    MinimapScene,
    PitchFrame,
    draw_frame,
    hex_colour,
    pitch_canvas,
)

SIZE = (640, 416)


def test_the_pitch_fits_inside_the_image_centred() -> None:
    frame = PitchFrame.fit(SIZE)
    corners = frame.to_pixels([[0, 0], [105, 68]])
    assert (corners >= 0).all() and corners[1, 0] <= SIZE[0] and corners[1, 1] <= SIZE[1]
    centre = frame.to_pixels([52.5, 34.0])[0]
    assert np.allclose(centre, [SIZE[0] / 2, SIZE[1] / 2])


def test_kit_colours_become_bgr_and_bad_ones_fall_back() -> None:
    assert hex_colour("#ff8000", (1, 2, 3)) == (0, 128, 255)
    assert hex_colour(None, (1, 2, 3)) == (1, 2, 3)
    assert hex_colour("#zzzzzz", (1, 2, 3)) == (1, 2, 3)
    assert hex_colour("red", (1, 2, 3)) == (1, 2, 3)


def test_dots_and_the_ball_are_drawn_where_they_are() -> None:
    frame = PitchFrame.fit(SIZE)
    canvas = pitch_canvas(frame)
    people = np.array([[20.0, 20.0], [80.0, 50.0]])
    image = draw_frame(canvas, frame, people, list(TEAM_COLOURS), np.array([52.0, 30.0]))
    for (u, v), colour in zip(frame.to_pixels(people), TEAM_COLOURS, strict=True):
        assert tuple(image[round(v), round(u)]) == colour
    u, v = frame.to_pixels([52.0, 30.0])[0]
    assert tuple(image[round(v), round(u)]) == BALL_COLOUR
    # Away from them, the grass is untouched.
    assert tuple(image[5, 5]) == GRASS


def test_a_person_is_held_briefly_over_a_gap_then_dropped() -> None:
    fps = 10.0  # hold: 5 frames
    scene = MinimapScene(
        frames=[0, 0, 4, 20],
        track_ids=[1, 2, 1, 1],
        teams=[0, 1, 0, 0],
        xy=[[10, 10], [50, 30], [12, 10], [30, 30]],
        ball_frames=[0],
        ball_xy=[[52, 34]],
        fps=fps,
    )
    xy, colours = scene.people(3)
    assert sorted(map(tuple, xy.tolist())) == [(10.0, 10.0), (50.0, 30.0)]
    xy, _ = scene.people(4)  # the latest report of track 1 wins
    assert (12.0, 10.0) in map(tuple, xy.tolist())
    xy, _ = scene.people(12)  # both beyond the hold
    assert len(xy) == 0
    xy, colours = scene.people(20)
    assert xy.tolist() == [[30.0, 30.0]] and colours == [TEAM_COLOURS[0]]
    assert scene.ball(5) is not None and scene.ball(6) is None


def test_people_without_a_team_are_drawn_in_the_other_colour_and_nan_is_skipped() -> None:
    scene = MinimapScene(
        frames=[0, 0],
        track_ids=[1, 2],
        teams=[-1, 0],
        xy=np.array([[10.0, 10.0], [np.nan, 3.0]]),
        ball_frames=[],
        ball_xy=np.zeros((0, 2)),
        fps=25.0,
    )
    xy, colours = scene.people(0)
    assert xy.tolist() == [[10.0, 10.0]] and colours == [OTHER_COLOUR]
    assert scene.ball(0) is None
