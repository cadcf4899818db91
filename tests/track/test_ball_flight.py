"""Ballistic flights from one view: simulated balls projected into the synthetic rig's panorama."""

from __future__ import annotations

import numpy as np
import pytest

from activities.stitch.panorama import (
    PanoramaModel,
    panorama_model_from_rig,
    panorama_to_pitch,
    pitch_to_panorama,
)
from activities.track.ball_flight import GRAVITY_MPS2, Flight, find_flights, pixel_rays
from polyvision.geometry.pitch import BALL_RADIUS_M
from synth.rig import default_rig

FPS = 25.0
FIRST = 100  # the flight's first frame: frames need not start at 0


@pytest.fixture(scope="module")
def model() -> PanoramaModel:
    return panorama_model_from_rig(default_rig(), scale=1.0)


def _airtime(apex_m: float) -> float:
    """Seconds from leaving the grass to landing on it, for a flight rising to ``apex_m``."""
    return 2 * np.sqrt(2 * GRAVITY_MPS2 * (apex_m - BALL_RADIUS_M)) / GRAVITY_MPS2


def _lofted(
    start: tuple[float, float], end: tuple[float, float], apex_m: float, frames: int | None = None
) -> np.ndarray:
    """``[N, 3]`` centre of a ball launched from the grass at ``start`` that would land at ``end``
    after rising to ``apex_m``, one row a frame until its last frame before landing (or
    ``frames`` rows)."""
    duration = _airtime(apex_m)
    vz = GRAVITY_MPS2 * duration / 2
    n = int(duration * FPS) + 1 if frames is None else frames
    t = np.arange(n) / FPS
    (x0, y0), (x1, y1) = start, end
    return np.column_stack(
        [
            x0 + (x1 - x0) / duration * t,
            y0 + (y1 - y0) / duration * t,
            BALL_RADIUS_M + vz * t - 0.5 * GRAVITY_MPS2 * t**2,
        ]
    )


def _flights(model: PanoramaModel, path: np.ndarray, noise_px: float = 0.0, seed: int = 0):
    uv = pitch_to_panorama(model, path)
    uv += np.random.default_rng(seed).normal(0.0, noise_px, uv.shape)
    frames = np.arange(FIRST, FIRST + len(path), dtype=np.int64)
    return find_flights(model, frames, uv, panorama_to_pitch(model, uv, BALL_RADIUS_M), FPS)


def _error(flight: Flight, path: np.ndarray) -> np.ndarray:
    """Largest ``|x|, |y|, |z|`` error of the flight over the sighted frames it covers."""
    frames = np.arange(
        max(flight.first, FIRST), min(flight.last, FIRST + len(path) - 1) + 1, dtype=np.int64
    )
    assert len(frames) > 0
    return np.abs(flight.at(frames, FPS) - path[frames - FIRST]).max(axis=0)


def test_pixel_rays_pass_through_the_points_they_image(model: PanoramaModel) -> None:
    rng = np.random.default_rng(0)
    points = np.column_stack(
        [rng.uniform(-5, 110, 200), rng.uniform(-5, 73, 200), rng.uniform(0, 20, 200)]
    )
    rays = pixel_rays(model, pitch_to_panorama(model, points))
    to_point = points - np.asarray(model.center)
    cross = np.linalg.norm(np.cross(rays, to_point), axis=1)
    # The sine of the angle between the ray and the point's direction: nothing but rounding.
    sine = cross / (np.linalg.norm(rays, axis=1) * np.linalg.norm(to_point, axis=1))
    assert sine.max() < 1e-9
    assert (np.einsum("ij,ij->i", rays, to_point) > 0).all()  # in front, not behind


def test_flight_at_is_ballistic_from_its_origin_and_never_below_the_grass() -> None:
    flight = Flight(5, 60, 10, np.array([1.0, 2.0, 0.11]), np.array([5.0, -2.0, 9.81]))
    p = flight.at(np.array([10, 35, 60, 85], np.int64), 25.0)
    np.testing.assert_allclose(p[:, 0], [1.0, 6.0, 11.0, 16.0])
    np.testing.assert_allclose(p[:, 1], [2.0, 0.0, -2.0, -4.0])
    np.testing.assert_allclose(p[:3, 2], [0.11, 0.11 + 9.81 - 9.81 / 2, 0.11])
    assert p[3, 2] == BALL_RADIUS_M  # a second after landing it is not underground


def test_a_lofted_ball_is_one_flight_near_its_true_path(model: PanoramaModel) -> None:
    path = _lofted((40.0, 20.0), (60.0, 40.0), apex_m=5.0)
    flights = _flights(model, path)
    assert len(flights) == 1
    flight = flights[0]
    # It spans the sightings, and the flight's own end: the landing, between the last sighting
    # and the next frame.
    assert flight.first <= FIRST and flight.last >= FIRST + len(path) - 1
    assert abs(flight.last - (FIRST + _airtime(5.0) * FPS)) <= 1.0
    assert flight.first >= FIRST - 2
    # Measured: x 0.19, y 1.27, z 0.25 m -- the landing pin (see the xfail below) costs the
    # metre along the ray; without it the fit is exact.
    x_err, y_err, z_err = _error(flight, path)
    assert x_err < 0.5 and y_err < 1.6 and z_err < 0.5
    frames = np.arange(flight.first, flight.last + 1, dtype=np.int64)
    assert flight.at(frames, FPS)[:, 2].max() == pytest.approx(5.0, abs=0.5)


def test_a_flight_cut_short_in_the_air_is_exact(model: PanoramaModel) -> None:
    # A header at about 3 m: the path ends in the air, nothing pins it to the grass.
    path = _lofted((40.0, 20.0), (60.0, 40.0), apex_m=5.0, frames=40)
    assert path[-1, 2] > 2.5
    flights = _flights(model, path)
    assert len(flights) == 1
    assert flights[0].first <= FIRST and flights[0].last >= FIRST + len(path) - 1
    assert (_error(flights[0], path) < 0.05).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_a_lofted_ball_is_recovered_through_pixel_noise(model: PanoramaModel, seed: int) -> None:
    path = _lofted((40.0, 20.0), (60.0, 40.0), apex_m=5.0)
    flights = _flights(model, path, noise_px=0.5, seed=seed)
    assert len(flights) == 1
    assert flights[0].first <= FIRST + 3 and flights[0].last >= FIRST + len(path) - 4
    x_err, y_err, z_err = _error(flights[0], path)  # measured: 0.19, 1.30, 0.26 at worst
    assert x_err < 0.6 and y_err < 1.8 and z_err < 0.6


@pytest.mark.xfail(
    strict=True,
    reason="find_flights pins the fitted path to the grass half a frame after the last sighting "
    "(lands=True) whenever that costs at most one inlier; the true landing can be anywhere in "
    "that frame, and at 60 m the few centimetres of height slide the path metres along the ray",
)
def test_a_flight_seen_until_just_before_it_lands_is_exact(model: PanoramaModel) -> None:
    path = _lofted((50.0, 34.0), (52.0, 60.0), apex_m=6.0)  # last sighting 0.3 m up
    flights = _flights(model, path)
    assert len(flights) == 1
    assert (_error(flights[0], path) < 0.3).all()  # today: y off by 2.16 m on exact pixels


@pytest.mark.parametrize(
    "velocity", [(8.0, 0.0), (0.0, 8.0), (-5.6, -5.6)], ids=["across", "away", "towards"]
)
def test_a_rolling_ball_is_no_flight(model: PanoramaModel, velocity: tuple[float, float]) -> None:
    t = np.arange(75) / FPS  # 3 s at 8 m/s
    path = np.column_stack(
        [30.0 + velocity[0] * t, 20.0 + velocity[1] * t, np.full(len(t), BALL_RADIUS_M)]
    )
    assert _flights(model, path) == []
    assert _flights(model, path, noise_px=0.5, seed=3) == []


def test_a_roll_then_a_flight_then_a_roll_gives_the_flight_only(model: PanoramaModel) -> None:
    t = np.arange(25) / FPS
    before = np.column_stack([30.0 + 8.0 * t, 20.0 + 0.0 * t, np.full(25, BALL_RADIUS_M)])
    air = _lofted((38.0, 20.0), (58.0, 35.0), apex_m=4.0)
    after = np.column_stack([58.0 + 6.0 * (t + 0.04), 35.0 + 0.0 * t, np.full(25, BALL_RADIUS_M)])
    path = np.concatenate([before, air, after])
    flights = _flights(model, path)
    assert len(flights) == 1
    flight = flights[0]
    # It starts where the ball leaves the grass, give or take a frame or two.
    assert abs(flight.first - (FIRST + 25)) <= 2
    assert abs(flight.last - (FIRST + 25 + len(air) - 1)) <= 3
    frames = np.arange(flight.first, flight.last + 1, dtype=np.int64)
    assert flight.at(frames, FPS)[:, 2].max() == pytest.approx(4.0, abs=0.6)
    in_air = np.arange(FIRST + 25, FIRST + 25 + len(air), dtype=np.int64)
    error = np.abs(flight.at(in_air, FPS) - path[in_air - FIRST]).max(axis=0)
    assert (error < [0.6, 1.5, 0.5]).all()  # measured: 0.29, 0.84, 0.24
