"""The match-ball tracker on candidates projected from known ball paths into the synthetic rig's
panorama, with clutter: static low-score spots, a bright spot that never moves (scenery) and a
spare ball standing outside the touchline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from activities.stitch.panorama import PanoramaModel, panorama_model_from_rig, pitch_to_panorama
from activities.track.ball_flight import GRAVITY_MPS2
from activities.track.ball_track import BallTrack
from activities.track.ball_tracker import BallCandidates, track_ball
from polyvision.geometry.pitch import BALL_RADIUS_M
from synth.rig import default_rig

FPS = 25.0
FIRST = 1000  # the chunk's first match frame
FRAMES = 250  # 10 s
ROLL = np.arange(50, 150)  # rows where the ball rolls (4 s)
SCENERY = (70.0, 50.0)
SPARE_BALL = (60.0, -8.0)  # 8 m beyond the near touchline


@pytest.fixture(scope="module")
def model() -> PanoramaModel:
    return panorama_model_from_rig(default_rig(), scale=1.0)


def _rolling_truth() -> np.ndarray:
    """``[100, 2]`` the ball's ground point on the rows of ``ROLL``: 6.7 m/s diagonally."""
    t = (ROLL - ROLL[0]) / FPS
    return np.column_stack([30.0 + 6.0 * t, 25.0 + 3.0 * t])


def _uv(model: PanoramaModel, xy: np.ndarray, z: np.ndarray | float = BALL_RADIUS_M) -> np.ndarray:
    xyz = np.column_stack([xy, np.broadcast_to(np.asarray(z, np.float64), (len(xy),))])
    return pitch_to_panorama(model, xyz)


@dataclass
class _Pile:
    """Candidates being put together."""

    frame: list[np.ndarray]
    uv: list[np.ndarray]
    score: list[np.ndarray]

    def add(self, rows: np.ndarray, uv: np.ndarray, score: np.ndarray | float) -> None:
        self.frame.append(np.asarray(rows, np.int64) + FIRST)
        self.uv.append(np.asarray(uv, np.float64).reshape(-1, 2))
        self.score.append(np.broadcast_to(np.asarray(score, np.float64), (len(rows),)).copy())

    def candidates(self) -> BallCandidates:
        if not self.frame:
            return BallCandidates(np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros(0))
        return BallCandidates(
            np.concatenate(self.frame), np.concatenate(self.uv), np.concatenate(self.score)
        )


def _static(pile: _Pile, model: PanoramaModel, xy: tuple[float, float], rows, score, rng) -> None:
    """A still object at ``xy`` in ``rows``, its pixel jittering by 0.1 px."""
    uv = np.repeat(_uv(model, np.array([xy])), len(rows), axis=0)
    pile.add(rows, uv + rng.normal(0.0, 0.1, uv.shape), score)


def _scene(
    model: PanoramaModel, gap: tuple[int, int] | None = None, seed: int = 0
) -> BallCandidates:
    """The rolling ball (rows ``gap`` of ``ROLL`` unseen) among the clutter."""
    rng = np.random.default_rng(seed)
    pile = _Pile([], [], [])
    seen = np.ones(len(ROLL), np.bool_)
    if gap is not None:
        seen[gap[0] : gap[1]] = False
    ball_uv = _uv(model, _rolling_truth()) + rng.normal(0.0, 0.3, (len(ROLL), 2))
    pile.add(ROLL[seen], ball_uv[seen], rng.uniform(0.7, 0.9, int(seen.sum())))
    for x, y in zip(rng.uniform(5, 100, 30), rng.uniform(5, 63, 30), strict=True):
        rows = np.flatnonzero(rng.random(FRAMES) < 0.5)
        _static(pile, model, (x, y), rows, rng.normal(0.5, 0.05, len(rows)), rng)
    _static(pile, model, SCENERY, np.arange(FRAMES), 0.9, rng)
    _static(pile, model, SPARE_BALL, np.arange(FRAMES), 0.95, rng)
    return pile.candidates()


def _assert_shape(track: BallTrack, first: int, frames: int) -> None:
    assert len(track) == frames
    np.testing.assert_array_equal(track.frame, np.arange(first, first + frames))
    assert not np.isnan(track.xy[track.visible]).any()
    assert np.isnan(track.xy[~track.visible]).all()
    assert not (track.observed & ~track.visible).any()
    assert not (track.in_play & ~track.visible).any()
    assert (track.confidence[~track.visible] == 0).all()


@pytest.fixture(scope="module")
def cluttered(model: PanoramaModel) -> BallTrack:
    return track_ball(_scene(model), model, FIRST, FRAMES, FPS)


def test_the_track_has_a_row_per_frame_of_the_chunk(cluttered: BallTrack) -> None:
    _assert_shape(cluttered, FIRST, FRAMES)


def test_the_rolling_ball_is_followed_through_the_clutter(cluttered: BallTrack) -> None:
    assert cluttered.observed[ROLL].all()
    assert cluttered.in_play[ROLL].all()
    error = np.hypot(*(cluttered.xy[ROLL] - _rolling_truth()).T)
    assert error.max() < 0.5
    np.testing.assert_allclose(cluttered.z[ROLL], BALL_RADIUS_M)
    assert (cluttered.confidence[ROLL] > 0.5).all()


def test_the_scenery_and_the_spare_ball_are_never_reported(cluttered: BallTrack) -> None:
    xy = cluttered.xy[cluttered.visible]
    for spot in (SCENERY, SPARE_BALL):
        assert np.hypot(*(xy - spot).T).min() > 3.0, spot
    # Nor anything else while the ball is not there: the static clutter is not the ball.
    outside = np.setdiff1d(np.arange(FRAMES), ROLL)
    assert not cluttered.visible[outside].any()


def test_a_one_second_gap_is_bridged(model: PanoramaModel) -> None:
    track = track_ball(_scene(model, gap=(40, 65)), model, FIRST, FRAMES, FPS)
    _assert_shape(track, FIRST, FRAMES)
    hidden = ROLL[40:65]
    assert track.visible[hidden].all()
    assert not track.observed[hidden].any()
    assert track.observed[ROLL[:40]].all() and track.observed[ROLL[65:]].all()
    error = np.hypot(*(track.xy[hidden] - _rolling_truth()[40:65]).T)
    assert error.max() < 0.5
    # Bridged rows are less sure than seen ones, but still the ball.
    assert (track.confidence[hidden] > 0).all()
    assert track.confidence[hidden].max() < track.confidence[ROLL[:40]].min()


def test_a_long_gap_is_not_bridged(model: PanoramaModel) -> None:
    track = track_ball(_scene(model, gap=(30, 90)), model, FIRST, FRAMES, FPS)  # 2.4 s
    assert not track.visible[ROLL[35:85]].any()
    assert track.observed[ROLL[:30]].all() and track.observed[ROLL[90:]].all()


def test_no_candidates_is_a_track_that_never_sees_the_ball(model: PanoramaModel) -> None:
    empty = _Pile([], [], []).candidates()
    track = track_ball(empty, model, FIRST, FRAMES, FPS)
    expected = BallTrack.not_seen(FIRST, FRAMES)
    np.testing.assert_array_equal(track.frame, expected.frame)
    for name in ("visible", "observed", "in_play", "confidence"):
        np.testing.assert_array_equal(getattr(track, name), getattr(expected, name))
    assert np.isnan(track.xy).all() and np.isnan(track.z).all()
    assert not track.reported.any()


def test_candidates_outside_the_chunk_are_ignored(model: PanoramaModel) -> None:
    pile = _Pile([], [], [])
    truth = _rolling_truth()
    pile.add(ROLL, _uv(model, truth), 0.8)  # rows 50..149 of the chunk starting at FIRST
    track = track_ball(pile.candidates(), model, FIRST + 100, 80, FPS)
    _assert_shape(track, FIRST + 100, 80)
    assert track.visible[:50].all() and not track.visible[50:].any()
    np.testing.assert_allclose(track.xy[:50], truth[50:], atol=0.05)


def test_a_ball_rolling_over_the_touchline_goes_out_of_play(model: PanoramaModel) -> None:
    t = np.arange(100) / FPS
    xy = np.column_stack([50.0 + 1.0 * t, 60.0 + 4.0 * t])  # y: 60 -> 76 m
    pile = _Pile([], [], [])
    noise = np.random.default_rng(2).normal(0.0, 0.3, (100, 2))
    pile.add(np.arange(100), _uv(model, xy) + noise, 0.8)
    track = track_ball(pile.candidates(), model, FIRST, 100, FPS)
    inside, beyond = xy[:, 1] < 67.5, xy[:, 1] > 68.6
    assert track.visible.all()
    assert track.in_play[inside].all()
    assert not track.in_play[beyond].any()
    assert not track.reported[beyond].any()


def test_a_lofted_ball_gets_its_height(model: PanoramaModel) -> None:
    # Rolls 1 s, flies 2.2 s rising to 6 m, rolls 1 s.
    apex = 6.0
    vz = np.sqrt(2 * GRAVITY_MPS2 * (apex - BALL_RADIUS_M))
    airtime = 2 * vz / GRAVITY_MPS2
    air = int(airtime * FPS) + 1
    rows = np.arange(25 + air + 25)
    t_roll = rows[:25] / FPS
    t_air = (rows[25 : 25 + air] - 25) / FPS
    t_after = (rows[25 + air :] - 25) / FPS - airtime
    land = (38.0 + 10.0 * airtime, 24.0 + 8.0 * airtime)
    path = np.concatenate(
        [
            np.column_stack([30 + 8 * t_roll, 20 + 4 * t_roll, np.full(25, BALL_RADIUS_M)]),
            np.column_stack(
                [38 + 10 * t_air, 24 + 8 * t_air, BALL_RADIUS_M + vz * t_air - 4.905 * t_air**2]
            ),
            np.column_stack(
                [land[0] + 6 * t_after, land[1] + 4 * t_after, np.full(25, BALL_RADIUS_M)]
            ),
        ]
    )
    pile = _Pile([], [], [])
    noise = np.random.default_rng(4).normal(0.0, 0.3, (len(rows), 2))
    pile.add(rows, _uv(model, path[:, :2], path[:, 2]) + noise, 0.8)
    track = track_ball(pile.candidates(), model, FIRST, len(rows), FPS)
    _assert_shape(track, FIRST, len(rows))
    assert track.visible.all()
    top = 25 + air // 2
    assert track.z[top] > 1.0
    assert track.z[top] == pytest.approx(path[top, 2], abs=1.0)  # measured: 6.18 for 6.0
    # In the air the ground point is under the ball, not where its pixel meets the grass (which
    # is 3 m farther at the apex).
    assert np.hypot(*(track.xy[top] - path[top, :2])) < 1.5  # measured: 0.86
    np.testing.assert_allclose(track.z[:20], BALL_RADIUS_M)
    np.testing.assert_allclose(track.z[-20:], BALL_RADIUS_M)


@pytest.mark.parametrize(("first", "frames"), [(0, 55), (-20, 75), (15, 70)])
def test_a_flight_cut_by_the_chunk_edges_stays_inside_the_chunk(
    model: PanoramaModel, first: int, frames: int
) -> None:
    # A lofted ball seen from its launch to just before its landing; the chunk ends at its last
    # sighting, starts 20 frames before it, or starts mid-flight.
    apex = 6.0
    vz = np.sqrt(2 * GRAVITY_MPS2 * (apex - BALL_RADIUS_M))
    n = int(2 * vz / GRAVITY_MPS2 * FPS) + 1
    t = np.arange(n) / FPS
    path = np.column_stack([40 + 8 * t, 20 + 6 * t, BALL_RADIUS_M + vz * t - 4.905 * t**2])
    pile = _Pile([], [], [])
    pile.add(np.arange(n), _uv(model, path[:, :2], path[:, 2]), 0.8)
    track = track_ball(pile.candidates(), model, FIRST + first, frames, FPS)
    _assert_shape(track, FIRST + first, frames)
    rows = np.arange(n) - first
    inside = (rows >= 0) & (rows < frames)
    assert track.visible[rows[inside]].all()
    assert np.nanmax(track.z) > 3.0
    # Nothing spilled to the other end of the chunk.
    before = np.arange(frames) < rows[inside].min() - 2
    assert not track.visible[before].any()


def test_a_jittering_still_spot_at_the_score_floor_is_not_the_ball(model: PanoramaModel) -> None:
    rows = np.arange(125)  # 5 s, under static_after_s
    uv = np.repeat(_uv(model, np.array([[52.5, 33.0]])), len(rows), axis=0)
    pile = _Pile([], [], [])
    pile.add(rows, uv + np.random.default_rng(0).normal(0.0, 0.3, uv.shape), 0.5)
    track = track_ball(pile.candidates(), model, FIRST, len(rows), FPS)
    assert not track.visible.any()  # today: visible in all 125 frames, confidence 0.5
