"""Possession with hysteresis, passes and events on a scripted sequence with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from activities.analyze.control import (
    NOBODY,
    OUT_OF_PLAY,
    PASS,
    POSSESSION_CHANGE,
    RESTART,
    ball_control,
    in_play_with_hysteresis,
)
from activities.track.ball_track import BallTrack

FPS = 25.0
FRAMES = 300
# Identity -> (team, position): two players of team 0 and one of team 1, standing still.
PLAYERS = {1: (0, (20.0, 30.0)), 2: (0, (35.0, 30.0)), 3: (1, (50.0, 30.0))}


def _players() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    frame = np.repeat(np.arange(FRAMES), len(PLAYERS))
    ident = np.tile(list(PLAYERS), FRAMES)
    team = np.array([PLAYERS[i][0] for i in ident])
    x = np.array([PLAYERS[i][1][0] for i in ident])
    y = np.array([PLAYERS[i][1][1] for i in ident])
    return frame, ident, team, x, y


def _ball() -> BallTrack:
    """0-49 at 1's feet; 50-74 a pass in flight (15 m/s) to 2; 75-124 at 2's feet; 125-149
    lost; 150-199 at 3's feet; 200-249 out of play beyond the touchline; 250-299 restart, 3."""
    xy = np.zeros((FRAMES, 2))
    visible = np.ones(FRAMES, np.bool_)
    in_play = np.ones(FRAMES, np.bool_)
    xy[:50] = (20.5, 30.0)
    xy[50:75, 0] = np.linspace(21.0, 35.0, 25)
    xy[50:75, 1] = 30.0
    xy[75:125] = (35.5, 30.0)
    visible[125:150] = False
    xy[125:150] = np.nan
    xy[150:200] = (50.5, 30.0)
    xy[200:250] = (50.0, -2.0)
    in_play[200:250] = False
    xy[250:] = (50.5, 30.0)
    return BallTrack(
        frame=np.arange(FRAMES, dtype=np.int64),
        xy=xy,
        z=np.where(visible, 0.11, np.nan),
        visible=visible,
        observed=visible,
        in_play=in_play & visible,
        confidence=visible.astype(np.float64),
    )


def test_possession_carried_through_flight_and_gaps_and_none_out_of_play() -> None:
    story = ball_control(_ball(), *_players(), FPS)
    possession = story.possession
    assert np.all(possession[:150] == 0)  # 1, the pass in flight, 2, and the lost ball
    assert np.all(possession[150:200] == 1)
    assert np.all(possession[200:250] == NOBODY)
    assert np.all(possession[250:] == 1)
    assert [(c.identity, c.start, c.end) for c in story.controls] == [
        (1, 0, 50),  # the kick: the ball still at his feet
        (2, 74, 124),  # the reception
        (3, 150, 199),
        (3, 250, 299),
    ]


def test_events_passes_possession_change_out_of_play_and_restart() -> None:
    story = ball_control(_ball(), *_players(), FPS)
    events = [
        (e.frame, e.kind, e.team, e.from_identity, e.to_identity, e.completed) for e in story.events
    ]
    assert events == [
        (50, PASS, 0, 1, 2, True),
        (124, PASS, 0, 2, 3, False),
        (150, POSSESSION_CHANGE, 1, 2, 3, False),
        (199, PASS, 1, 3, -1, False),  # kicked out of play
        (200, OUT_OF_PLAY, 1, 3, -1, False),
        (250, RESTART, NOBODY, -1, -1, False),
    ]
    played = next(e for e in story.events if e.kind == PASS)
    assert played.xy == (21.0, 30.0) and played.to_xy == (35.0, 30.0)


def test_a_ball_brushing_past_a_player_does_not_change_possession() -> None:
    ball = _ball()
    # Two frames of the flight pass within reach of player 3 of the other team (moved onto
    # the ball's line): fewer than the touches needed to take control.
    xy = ball.xy.copy()
    xy[60:62] = (50.2, 30.0)
    brushed = BallTrack(
        ball.frame, xy, ball.z, ball.visible, ball.observed, ball.in_play, ball.confidence
    )
    story = ball_control(brushed, *_players(), FPS)
    assert np.all(story.possession[:150] == 0)


def test_out_of_play_needs_a_run_of_evidence() -> None:
    ball = _ball()
    in_play = ball.in_play.copy()
    in_play[20:22] = False  # two frames reported off the pitch: noise
    noisy = BallTrack(
        ball.frame, ball.xy, ball.z, ball.visible, ball.observed, in_play, ball.confidence
    )
    state = in_play_with_hysteresis(noisy, out_frames=4, in_frames=4)
    assert state[:200].all() and not state[200:250].any() and state[250:].all()


@pytest.mark.parametrize("frames", [0, 1])
def test_tiny_inputs(frames: int) -> None:
    ball = BallTrack.not_seen(0, frames)
    story = ball_control(ball, [], [], [], [], [], FPS)
    assert len(story.possession) == frames and story.events == []


def test_a_ball_lost_for_long_is_nobodys() -> None:
    ball = _ball()
    visible = ball.visible.copy()
    visible[75:150] = False  # 3 s without the ball: longer than `lost_s`
    xy = np.where(visible[:, None], ball.xy, np.nan)
    lost = BallTrack(
        ball.frame, xy, ball.z, visible, visible, ball.in_play & visible, ball.confidence
    )
    story = ball_control(lost, *_players(), FPS)
    assert np.all(story.possession[:75] == 0)
    assert np.all(story.possession[75:150] == NOBODY)
    assert np.all(story.possession[150:200] == 1)
