"""The virtual rig: rig.json round trip and validation, and the cameras' geometry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from polyvision.geometry import RIG_VERSION, CameraModel, Rig, RigError, image_to_pitch, project
from synth.rig import default_rig

WIDTH, HEIGHT = 640, 360
CENTRE_SPOT = (52.5, 34.0)
LEFT_PENALTY_SPOT = (11.0, 34.0)
RIGHT_PENALTY_SPOT = (94.0, 34.0)


@pytest.fixture(scope="module")
def rig() -> Rig:
    return default_rig(WIDTH, HEIGHT)


def sees(camera: CameraModel, xy: tuple[float, float], z: float = 0.0) -> bool:
    """Whether a pitch point projects inside the camera's image."""
    (pixel,), (ok,) = project(camera, [[xy[0], xy[1], z]])
    width, height = camera.image_size
    return bool(ok) and 0 <= pixel[0] <= width - 1 and 0 <= pixel[1] <= height - 1


def test_rig_json_round_trip(rig: Rig, tmp_path) -> None:
    path = tmp_path / "rig.json"
    rig.save(path)
    document = json.loads(path.read_text())
    assert document["version"] == RIG_VERSION
    assert isinstance(document["frame"], str) and "pitch" in document["frame"]
    assert set(document["cameras"]) == {"left", "right"}

    loaded = Rig.load(path)
    assert loaded.version == rig.version
    assert (loaded.pitch_length_m, loaded.pitch_width_m) == (105.0, 68.0)
    for name, camera in rig.cameras.items():
        other = loaded.cameras[name]
        assert other.name == name
        assert other.image_size == (WIDTH, HEIGHT)
        for attr in ("camera_matrix", "distortion", "rvec", "tvec"):
            np.testing.assert_array_equal(getattr(other, attr), getattr(camera, attr))
    assert Rig.from_json(loaded.to_json()).to_json() == rig.to_json()


def _document(rig: Rig) -> dict:
    return json.loads(rig.to_json())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("cameras"), "missing field"),
        (lambda d: d.pop("version"), "missing field"),
        (lambda d: d["cameras"]["left"].pop("tvec"), "missing field"),
        (lambda d: d["cameras"].pop("right"), "'right'"),
        (lambda d: d.update(version=2), "unknown rig version"),
        (lambda d: d.update(version="1"), "unknown rig version"),
        (lambda d: d["cameras"]["left"].update(camera_matrix=[[1, 0, 0], [0, 1, 0]]), "shape"),
        (lambda d: d["cameras"]["right"].update(distortion=[0.1, 0.0]), "shape"),
        (lambda d: d["cameras"]["left"].update(rvec="nope"), "numeric"),
        (lambda d: d["cameras"]["left"].update(image_size=[640]), "image_size"),
        (lambda d: d["cameras"]["left"].update(image_size=[640, -1]), "image_size"),
    ],
)
def test_rig_json_validation(rig: Rig, mutate, message: str) -> None:
    document = _document(rig)
    mutate(document)
    with pytest.raises(RigError, match=message):
        Rig.from_json(json.dumps(document))


def test_rig_load_rejects_non_json(tmp_path) -> None:
    path = tmp_path / "rig.json"
    path.write_text("{not json")
    with pytest.raises(RigError, match="not valid JSON"):
        Rig.load(path)
    assert issubclass(RigError, ValueError)


def test_cameras_stand_side_by_side_behind_the_halfway_line(rig: Rig) -> None:
    left, right = rig.cameras["left"].center, rig.cameras["right"].center
    assert left[0] < 52.5 < right[0] and right[0] - left[0] <= 3.0
    for centre in (left, right):
        assert -20.0 <= centre[1] <= -12.0 and 10.0 <= centre[2] <= 15.0
    for camera in rig.cameras.values():
        assert -0.2 <= camera.distortion[0] <= -0.1


@pytest.mark.parametrize("size", [(640, 360), (1920, 1080), (320, 240)])
def test_each_camera_sees_its_half_and_the_overlap(size: tuple[int, int]) -> None:
    rig = default_rig(*size)
    left, right = rig.cameras["left"], rig.cameras["right"]
    half_corners = {
        "left": [(0.0, 0.0), (0.0, 68.0), (52.5, 0.0), (52.5, 68.0), LEFT_PENALTY_SPOT],
        "right": [(105.0, 0.0), (105.0, 68.0), (52.5, 0.0), (52.5, 68.0), RIGHT_PENALTY_SPOT],
    }
    for name, points in half_corners.items():
        camera = rig.cameras[name]
        for point in points:
            assert sees(camera, point), (name, point)
            assert sees(camera, point, z=2.0), (name, point, "head height")
    # The overlap: the centre spot and the whole halfway line are in both images.
    for y in np.linspace(0.0, 68.0, 9):
        assert sees(left, (52.5, float(y))) and sees(right, (52.5, float(y)))
    assert sees(left, CENTRE_SPOT) and sees(right, CENTRE_SPOT)
    # A little more than half: not the other penalty spot, nor the other goal line.
    assert not sees(left, RIGHT_PENALTY_SPOT) and not sees(right, LEFT_PENALTY_SPOT)
    assert not sees(left, (75.0, 34.0)) and not sees(right, (30.0, 34.0))
    for y in (0.0, 34.0, 68.0):
        assert not sees(left, (105.0, y)) and not sees(right, (0.0, y))


def test_project_then_image_to_pitch_round_trip(rig: Rig) -> None:
    xs, ys = np.meshgrid(np.linspace(-1.0, 106.0, 40), np.linspace(-1.0, 69.0, 25))
    ground = np.stack([xs.ravel(), ys.ravel(), np.zeros(xs.size)], axis=1)
    for camera in rig.cameras.values():
        pixels, ok = project(camera, ground)
        inside = ok & (pixels[:, 0] >= 0) & (pixels[:, 0] <= WIDTH - 1)
        inside &= (pixels[:, 1] >= 0) & (pixels[:, 1] <= HEIGHT - 1)
        assert inside.sum() > 300
        back = image_to_pitch(camera, pixels[inside])
        error = np.linalg.norm(back - ground[inside, :2], axis=1)
        assert error.max() < 0.01


def test_image_to_pitch_above_the_horizon_is_nan(rig: Rig) -> None:
    camera = rig.cameras["left"]
    # A point 100 m up in the sky projects above the horizon: its ray never meets the ground.
    (pixel,), (ok,) = project(camera, [[30.0, 200.0, 100.0]])
    assert ok
    assert np.isnan(image_to_pitch(camera, [pixel])).all()


def test_project_flags_points_behind_the_camera(rig: Rig) -> None:
    camera = rig.cameras["left"]
    behind = camera.center + np.array([0.0, -5.0, 0.0])  # cameras look towards +y
    _, ok = project(camera, [behind, [20.0, 30.0, 0.0]])
    assert ok.tolist() == [False, True]


def test_default_rig_scales_with_image_size() -> None:
    small, large = default_rig(640, 360), default_rig(1920, 1080)
    for name in ("left", "right"):
        a, b = small.cameras[name], large.cameras[name]
        np.testing.assert_allclose(a.rvec, b.rvec)
        np.testing.assert_allclose(a.tvec, b.tvec)
        np.testing.assert_allclose(a.camera_matrix[0, 0] * 3, b.camera_matrix[0, 0], rtol=1e-9)
        (pa,), _ = project(a, [[52.5, 34.0, 0.0]])
        (pb,), _ = project(b, [[52.5, 34.0, 0.0]])
        np.testing.assert_allclose((pa + 0.5) * 3, pb + 0.5, atol=1e-6)
