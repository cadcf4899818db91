"""Behaviour of the football simulation behind the synthetic two-camera match."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from polyvision.geometry.pitch import BALL_RADIUS_M, PITCH_LENGTH_M, PITCH_WIDTH_M
from synth.simulation import (
    GRAVITY_MPS2,
    MAX_ACCEL_MPS2,
    MAX_PLAYER_SPEED_MPS,
    simulate,
)
from synth.types import Role, Simulation, Team

FPS = 25.0
SECONDS = 60.0
SEED = 0
PLAYERS = slice(1, 23)
HOME_OUTFIELD = slice(2, 12)
AWAY_OUTFIELD = slice(13, 23)


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(SECONDS, FPS, SEED)


def _restarts(sim: Simulation) -> list[int]:
    """Frames where the ball comes back into play."""
    return [int(f) for f in np.flatnonzero(sim.in_play[1:] & ~sim.in_play[:-1]) + 1]


def test_same_arguments_give_identical_arrays_and_another_seed_differs() -> None:
    a, b, c = simulate(12.0, FPS, 7), simulate(12.0, FPS, 7), simulate(12.0, FPS, 8)
    for name in ("position", "velocity", "heading", "stride_phase", "in_play", "possession"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.events == b.events
    assert a.agents == b.agents
    assert not np.array_equal(a.position, c.position)


def test_shapes_dtypes_and_roster(sim: Simulation) -> None:
    frames = round(SECONDS * FPS)
    assert sim.frame_count == frames
    assert sim.position.shape == (frames, 24, 3) and sim.position.dtype == np.float32
    assert sim.velocity.dtype == np.float32 and sim.heading.dtype == np.float32
    assert sim.stride_phase.dtype == np.float32
    assert sim.possession.dtype == np.int16 and sim.in_play.dtype == np.bool_
    assert sim.seed == SEED and sim.fps == FPS
    assert all(np.isfinite(getattr(sim, n)).all() for n in ("position", "velocity", "heading"))

    agents = sim.agents
    assert [a.id for a in agents] == list(range(24))
    assert agents[0].role is Role.ball and sim.ball_index == 0
    for first, team in ((1, Team.home), (12, Team.away)):
        squad = agents[first : first + 11]
        assert all(a.team is team for a in squad)
        assert [a.number for a in squad] == list(range(1, 12))
        assert squad[0].role is Role.goalkeeper
        assert all(a.role is Role.outfield for a in squad[1:])
        assert len({a.kit for a in squad[1:]}) == 1
        assert squad[0].kit != squad[1].kit
        assert all(1.70 <= a.height_m <= 1.95 for a in squad)
    assert agents[23].role is Role.referee and agents[23].team is Team.referee
    kits = {agents[1].kit, agents[2].kit, agents[12].kit, agents[13].kit, agents[23].kit}
    assert len(kits) == 5, "both kits, both goalkeepers and the referee must differ"
    assert len({a.skin for a in agents[1:]}) > 1


def test_players_respect_speed_and_acceleration_limits(sim: Simulation) -> None:
    v = sim.velocity[:, PLAYERS, :2].astype(np.float64)
    speed = np.hypot(v[..., 0], v[..., 1])
    assert speed.max() <= MAX_PLAYER_SPEED_MPS + 1e-3
    # Mostly jogging, but someone sprints now and then.
    assert 1.0 < float(np.median(speed)) < 5.0
    assert speed.max() > 6.5
    accel = np.hypot(*(np.diff(v, axis=0) * FPS).transpose(2, 0, 1))
    assert accel.max() <= MAX_ACCEL_MPS2 + 0.01
    assert np.all(sim.position[:, PLAYERS, 2] == 0.0)


def test_velocity_matches_position_differences(sim: Simulation) -> None:
    pos = sim.position.astype(np.float64)
    fd = np.diff(pos, axis=0) * FPS
    err = np.abs(fd - sim.velocity[1:])
    # float32 positions near 100 m carry ~1e-5 m of rounding, times fps.
    assert err[:, PLAYERS].max() < 2e-3
    # The ball too, except when it is put on a restart spot.
    continuous = np.ones(sim.frame_count - 1, dtype=bool)
    continuous[[f - 1 for f in _restarts(sim)]] = False
    assert err[continuous, 0].max() < 2e-3


def test_airborne_ball_follows_a_parabola_and_never_sinks(sim: Simulation) -> None:
    z = sim.position[:, 0, 2].astype(np.float64)
    assert z.min() >= BALL_RADIUS_M - 1e-6
    free = (sim.possession < 0) & sim.in_play & (z > BALL_RADIUS_M + 1e-3)
    # Triples of frames in free flight (a bounce frame sits exactly on the radius).
    triple = free[:-2] & free[1:-1] & free[2:]
    assert triple.sum() > 25, "expected at least a second of free flight"
    second = z[2:] - 2 * z[1:-1] + z[:-2]
    assert np.allclose(second[triple], -GRAVITY_MPS2 / FPS**2, atol=1e-4)
    assert z.max() > 2.0, "lofted passes should get well off the ground"


def test_ball_goes_out_and_restarts_from_the_right_spot(sim: Simulation) -> None:
    assert not sim.in_play.all()
    assert sim.in_play[-1] or len(_restarts(sim)) >= 1
    restarts = _restarts(sim)
    assert restarts, "play never restarted"
    named = {
        f: e for f, e in sim.events if e.split()[0] in {"throw-in", "corner", "goal", "kick-off"}
    }
    outs = [f for f, e in sim.events if e.startswith("out of play") or e.startswith("goal ")]
    assert outs
    for f in restarts:
        x, y, z = sim.position[f, 0]
        kind = next(e for g, e in sim.events if g == f and not e.startswith("pass"))
        assert sim.possession[f] > 0, "a player takes the restart"
        assert z == pytest.approx(BALL_RADIUS_M)
        assert np.all(sim.velocity[f, 0] == 0.0)
        if kind.startswith("throw-in"):
            assert min(abs(y), abs(y - PITCH_WIDTH_M)) < 1e-3
            assert 0.0 <= x <= PITCH_LENGTH_M
        elif kind.startswith("corner"):
            assert min(abs(x), abs(x - PITCH_LENGTH_M)) < 1e-3
            assert min(abs(y), abs(y - PITCH_WIDTH_M)) < 1e-3
        elif kind.startswith("goal kick"):
            assert min(abs(x - 5.5), abs(x - (PITCH_LENGTH_M - 5.5))) < 1e-3
        else:
            assert kind.startswith("kick-off")
            assert (x, y) == pytest.approx((PITCH_LENGTH_M / 2, PITCH_WIDTH_M / 2))
        # The ball is out of play after it crossed a line, while it was out.
        before = sim.position[f - 1, 0]
        assert not sim.in_play[f - 1]
        assert (
            before[0] < 0
            or before[0] > PITCH_LENGTH_M
            or before[1] < 0
            or before[1] > PITCH_WIDTH_M
        ) or named[f].startswith("kick-off")


def test_possession_changes_between_teams(sim: Simulation) -> None:
    owner = sim.possession[sim.possession > 0]
    team = owner >= 12  # False for home (ids 1..11), True for away (12..22)
    assert np.count_nonzero(np.diff(team.astype(np.int8))) >= 2
    assert set(np.unique(sim.possession)) <= {-1, *range(1, 23)}
    # Possession is -1 whenever the ball is out of play.
    assert np.all(sim.possession[~sim.in_play] == -1)


def test_ground_and_lofted_passes_both_happen(sim: Simulation) -> None:
    passes = [(f, e) for f, e in sim.events if e.startswith("pass ")]
    ground = [f for f, e in passes if e.endswith("ground")]
    lofted = [f for f, e in passes if e.endswith("lofted")]
    assert ground and lofted
    z = sim.position[:, 0, 2]

    def flight(f: int) -> np.ndarray:
        """Ball heights from the kick until someone (perhaps a keeper) gathers it or kicks it."""
        later = [g for g, _ in passes if g > f]
        end = min([f + 5, *later[:1]])
        loose = np.flatnonzero(sim.possession[f:end] >= 0)
        return z[f : f + loose[0]] if loose.size else z[f:end]

    for f in lofted:
        up = flight(f)
        assert up.size < 3 or (np.all(np.diff(up) > 0) and up[-1] > BALL_RADIUS_M + 0.1), f
    rolled = [f for f in ground if z[f - 1] < BALL_RADIUS_M + 0.05]
    assert rolled
    for f in rolled:
        assert np.all(flight(f) < BALL_RADIUS_M + 0.05), f"ground pass at {f} rose"


def test_dribbled_ball_stays_at_the_feet(sim: Simulation) -> None:
    frames = np.flatnonzero((sim.possession > 0) & sim.in_play)
    owner = sim.possession[frames]
    gap = np.hypot(*(sim.position[frames, 0, :2] - sim.position[frames, owner, :2]).T)
    assert np.median(gap) < 1.0
    assert np.percentile(gap, 95) < 1.5


def test_team_shape_follows_the_ball(sim: Simulation) -> None:
    ball_x = sim.position[:, 0, 0]
    for team in (HOME_OUTFIELD, AWAY_OUTFIELD):
        mean_x = sim.position[:, team, 0].mean(axis=1)
        assert np.corrcoef(ball_x, mean_x)[0, 1] > 0.5


def test_goalkeepers_stay_near_their_goal(sim: Simulation) -> None:
    assert sim.position[:, 1, 0].max() < 20.0
    assert sim.position[:, 12, 0].min() > PITCH_LENGTH_M - 20.0


def test_everyone_stays_within_the_margin(sim: Simulation) -> None:
    xy = sim.position[..., :2]
    assert xy[..., 0].min() >= -3.0 and xy[..., 0].max() <= PITCH_LENGTH_M + 3.0
    assert xy[..., 1].min() >= -3.0 and xy[..., 1].max() <= PITCH_WIDTH_M + 3.0


def test_players_rarely_crowd_each_other(sim: Simulation) -> None:
    xy = sim.position[:, PLAYERS, :2]
    gap = np.linalg.norm(xy[:, :, None] - xy[:, None], axis=-1)
    gap[:, np.arange(22), np.arange(22)] = np.inf
    assert (gap.min(axis=(1, 2)) < 0.3).mean() < 0.02


def test_heading_follows_motion_and_stride_follows_distance(sim: Simulation) -> None:
    h = sim.heading[:, PLAYERS].astype(np.float64)
    assert np.all(np.abs(h) <= math.pi + 1e-6)
    v = sim.velocity[:, PLAYERS, :2].astype(np.float64)
    speed = np.hypot(v[..., 0], v[..., 1])
    moving = speed > 4.0
    off = np.abs((np.arctan2(v[..., 1], v[..., 0]) - h + np.pi) % (2 * np.pi) - np.pi)
    assert np.percentile(off[moving], 95) < 0.5

    phase = sim.stride_phase[:, PLAYERS].astype(np.float64)
    step = (np.diff(phase, axis=0)) % (2 * np.pi)
    dist = speed[1:] / FPS
    running = dist > 0.05
    per_metre = step[running] / dist[running]
    assert per_metre.min() > 2 * np.pi / 2.2 - 1e-2
    assert per_metre.max() < 2 * np.pi / 1.8 + 1e-2
    standing = dist < 1e-4
    assert np.all(step[standing] < 1e-3)


def test_other_frame_rates_work() -> None:
    sim = simulate(4.0, 50.0, 3)
    assert sim.frame_count == 200 and sim.fps == 50.0
    fd = np.diff(sim.position[:, PLAYERS].astype(np.float64), axis=0) * 50.0
    assert np.abs(fd - sim.velocity[1:, PLAYERS]).max() < 5e-3


@pytest.mark.parametrize(
    ("seconds", "fps"), [(0.0, 25.0), (10.0, 0.0), (-1.0, 25.0), (math.nan, 25.0)]
)
def test_rejects_nonsense_durations(seconds: float, fps: float) -> None:
    with pytest.raises(ValueError):
        simulate(seconds, fps, 0)


def test_a_minute_simulates_in_well_under_five_seconds() -> None:
    # An upper-bound sanity check for CI, not a benchmark.
    start = time.perf_counter()
    simulate(SECONDS, FPS, 1)
    assert time.perf_counter() - start < 5.0
