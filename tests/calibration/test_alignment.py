"""Feature alignment and relative pose on the synthetic rig, where the truth is known."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from polyvision.calibration.alignment import align_by_features, kabsch
from polyvision.calibration.errors import CalibrationError, TooFewPointsError
from polyvision.calibration.report import camera_angles, pose_difference, relative_pose
from polyvision.geometry import CameraModel, Rig
from synth.render import Renderer
from synth.rig import default_rig
from synth.simulation import simulate
from synth.types import Simulation

WIDTH, HEIGHT = 1280, 720


@pytest.fixture(scope="module")
def simulation() -> Simulation:
    return simulate(0.04, 25.0, 7)


def frames(rig: Rig, simulation: Simulation) -> dict[str, np.ndarray]:
    return Renderer(rig, simulation.agents, seed=7).render(0, simulation)


@pytest.fixture(scope="module")
def rig() -> Rig:
    return default_rig(WIDTH, HEIGHT)


@pytest.fixture(scope="module")
def rig_frames(rig: Rig, simulation: Simulation) -> dict[str, np.ndarray]:
    return frames(rig, simulation)


def test_ground_alignment_recovers_the_right_camera(
    rig: Rig, rig_frames: dict[str, np.ndarray]
) -> None:
    left, right = rig.cameras["left"], rig.cameras["right"]
    aligned = align_by_features(
        left,
        rig_frames["left"],
        rig_frames["right"],
        right.camera_matrix,
        right.distortion,
        "right",
    )
    angle, distance = pose_difference(aligned.camera, right)
    assert angle < 0.2
    assert distance < 0.3
    assert aligned.inliers >= 30 and aligned.rms_px < 2.0
    # The relative pose derived from the aligned camera is the synthetic truth.
    truth, found = relative_pose(left, right), relative_pose(left, aligned.camera)
    assert truth.baseline_m == pytest.approx(2.0)
    assert found.rotation_deg == pytest.approx(truth.rotation_deg, abs=0.2)
    assert found.baseline_m == pytest.approx(2.0, abs=0.3)
    assert "ground model" in aligned.summary()
    assert aligned.to_report()["inliers"] == aligned.inliers


def test_rotation_alignment_recovers_a_known_rotation(simulation: Simulation) -> None:
    """Both cameras at one optical centre: the rotation-only model is exact."""
    base = default_rig(WIDTH, HEIGHT)
    left, right = base.cameras["left"], base.cameras["right"]
    # The right camera turned to look at the right half, from the left camera's position.
    shared = dataclasses.replace(right, tvec=-right.rotation @ left.center)
    rig = dataclasses.replace(base, cameras={"left": left, "right": shared})
    images = frames(rig, simulation)
    aligned = align_by_features(
        left,
        images["left"],
        images["right"],
        shared.camera_matrix,
        shared.distortion,
        "right",
        model="rotation",
    )
    angle, distance = pose_difference(aligned.camera, shared)
    assert angle < 0.1
    assert distance < 1e-9  # the centre is the reference's, by assumption
    truth = relative_pose(left, shared)
    assert truth.baseline_m < 1e-9 and truth.rotation_deg > 20.0
    assert relative_pose(left, aligned.camera).rotation_deg == pytest.approx(
        truth.rotation_deg, abs=0.1
    )
    assert aligned.model == "rotation" and aligned.inliers >= 30


def test_no_overlap_means_too_few_matches(rig: Rig) -> None:
    left, right = rig.cameras["left"], rig.cameras["right"]
    blank = np.full((HEIGHT, WIDTH, 3), 60, np.uint8)
    with pytest.raises(TooFewPointsError, match="features matched"):
        align_by_features(left, blank, blank, right.camera_matrix, right.distortion, "right")
    with pytest.raises(CalibrationError, match="alignment model"):
        align_by_features(
            left, blank, blank, right.camera_matrix, right.distortion, "right", model="affine"
        )


def test_relative_pose_and_angles_of_the_synthetic_rig(rig: Rig) -> None:
    left, right = rig.cameras["left"], rig.cameras["right"]
    relative = relative_pose(left, right)
    assert relative.baseline_pitch_m == pytest.approx((2.0, 0.0, 0.0))
    a, b = camera_angles(left), camera_angles(right)
    # Mirror images about the halfway line: opposite pans, equal tilts, level (look_at).
    assert a.pan_deg == pytest.approx(-b.pan_deg) and a.pan_deg < 0
    assert a.tilt_deg == pytest.approx(b.tilt_deg) and a.tilt_deg > 0
    assert a.roll_deg == pytest.approx(0.0, abs=1e-9)
    assert relative.pan_deg == pytest.approx(2 * b.pan_deg)
    assert relative.rotation_deg > abs(relative.pan_deg) - 1e-6
    assert "baseline 2.00 m" in relative.summary()


def test_kabsch_recovers_a_rotation() -> None:
    rng = np.random.default_rng(1)
    rotation, _ = cv2.Rodrigues(np.array([0.3, -0.2, 0.5]))
    source = rng.normal(size=(20, 3))
    np.testing.assert_allclose(kabsch(source, source @ rotation.T), rotation, atol=1e-12)


def test_reference_frame_must_match_its_camera(rig: Rig) -> None:
    left: CameraModel = rig.cameras["left"]
    small = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(CalibrationError, match="frame is 10x10"):
        align_by_features(left, small, small, left.camera_matrix, left.distortion, "right")
