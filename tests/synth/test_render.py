"""The renderer: geometry against rig.json, determinism, ground truth, exposure, detectability."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from polyvision.geometry import Rig, project
from synth.pitch import PENALTY_SPOTS
from synth.render import CameraBoxes, Renderer, RenderStyle
from synth.rig import default_rig
from synth.types import Agent, Kit, Role, Simulation, Team

WIDTH, HEIGHT = 640, 360
RED = Kit(shirt=(200, 30, 40), shorts=(240, 240, 240), socks=(200, 30, 40))
BLUE = Kit(shirt=(30, 60, 170), shorts=(20, 30, 80), socks=(240, 240, 240))
BLACK = Kit(shirt=(20, 20, 20), shorts=(20, 20, 20), socks=(20, 20, 20))
SKIN = (205, 150, 115)


def make_simulation(
    placements: list[tuple[float, float, float]],
    ball: tuple[float, float, float] = (52.5, 34.0, 0.11),
    frames: int = 3,
) -> Simulation:
    """Players at ``(x, y, heading)``, running along their heading at 5 m/s, plus the ball."""
    agents = [Agent(0, Team.ball, Role.ball, 0, BLACK, (0, 0, 0), 0.22)]
    for i, _ in enumerate(placements):
        team = Team.home if i % 2 == 0 else Team.away
        kit = RED if i % 2 == 0 else BLUE
        agents.append(Agent(i + 1, team, Role.outfield, i + 1, kit, SKIN, 1.8))
    count = len(agents)
    heading = np.array([0.0] + [p[2] for p in placements], np.float32)
    speed = np.array([0.0] + [5.0] * len(placements), np.float32)
    start = np.array([ball] + [(p[0], p[1], 0.0) for p in placements], np.float32)
    velocity = np.stack([np.cos(heading) * speed, np.sin(heading) * speed, 0 * speed], axis=1)
    times = np.arange(frames, dtype=np.float32)[:, None, None] / 25.0
    return Simulation(
        fps=25.0,
        agents=agents,
        position=(start[None] + velocity[None] * times).astype(np.float32),
        velocity=np.repeat(velocity[None], frames, axis=0).astype(np.float32),
        heading=np.repeat(heading[None], frames, axis=0),
        stride_phase=(np.arange(frames)[:, None] * 0.9 + np.arange(count)[None]).astype(np.float32),
        in_play=np.ones(frames, bool),
        possession=np.full(frames, -1, np.int16),
    )


# Near the left penalty area, on the near side of the centre circle, in front of the right goal.
SCENE = make_simulation([(20.0, 20.0, 0.3), (52.0, 12.0, 2.0), (95.0, 30.0, -1.2)])


@pytest.fixture(scope="module")
def rig() -> Rig:
    return default_rig(WIDTH, HEIGHT)


@pytest.fixture(scope="module")
def clean(rig: Rig) -> Renderer:
    return Renderer(rig, SCENE.agents, seed=3, style=RenderStyle.clean())


@pytest.fixture(scope="module")
def noisy(rig: Rig) -> Renderer:
    return Renderer(rig, SCENE.agents, seed=3)


def test_a_pitch_point_is_drawn_where_rig_json_projects_it(tmp_path: Path) -> None:
    """The issue's geometry check: the drawn penalty spot sits within 0.5 px of its projection.

    The spot's centroid is measured on a noise-free background with uniform grass, as the
    brightness above the grass in a small window around the projection.
    """
    built = default_rig(1280, 720)
    built.save(tmp_path / "rig.json")
    rig = Rig.load(tmp_path / "rig.json")
    renderer = Renderer(rig, SCENE.agents, seed=0, style=RenderStyle.clean())
    for name, spot in (("left", PENALTY_SPOTS[0]), ("right", PENALTY_SPOTS[1])):
        (expected,), (ok,) = project(rig.cameras[name], [[spot[0], spot[1], 0.0]])
        assert ok
        x0, y0 = (int(v) for v in np.round(expected))
        r = 5
        window = renderer.background(name)[y0 - r : y0 + r + 1, x0 - r : x0 + r + 1]
        grey = window.astype(np.float64).mean(axis=2)
        excess = np.clip(grey - np.median(grey), 0.0, None)
        assert excess.max() > 20.0, "no spot drawn near its projection"
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        centroid = np.array([(excess * xx).sum(), (excess * yy).sum()]) / excess.sum()
        error = np.linalg.norm(centroid + np.array([x0, y0]) - expected)
        assert error < 0.5, (name, error)


def test_frames_are_deterministic(rig: Rig, noisy: Renderer) -> None:
    again = Renderer(rig, SCENE.agents, seed=3)
    first, second = noisy.render(1, SCENE), again.render(1, SCENE)
    assert set(first) == {"left", "right"}
    for name in first:
        assert first[name].shape == (HEIGHT, WIDTH, 3) and first[name].dtype == np.uint8
        np.testing.assert_array_equal(first[name], second[name])
    # Noise changes between frames and with the seed.
    assert not np.array_equal(noisy.render(2, SCENE)["left"], first["left"])
    other = Renderer(rig, SCENE.agents, seed=4).render(1, SCENE)
    assert not np.array_equal(other["left"], first["left"])


def _check_boxes(boxes: CameraBoxes, count: int) -> None:
    assert boxes.boxes.shape == (count, 4) and boxes.boxes.dtype == np.float32
    assert boxes.visible.shape == (count,) and boxes.inside_fraction.shape == (count,)
    visible = boxes.boxes[boxes.visible]
    assert (visible[:, 0] >= -0.5).all() and (visible[:, 2] <= WIDTH - 0.5).all()
    assert (visible[:, 1] >= -0.5).all() and (visible[:, 3] <= HEIGHT - 0.5).all()
    assert (visible[:, 2] > visible[:, 0]).all() and (visible[:, 3] > visible[:, 1]).all()
    fraction = boxes.inside_fraction
    assert ((fraction > 0) == boxes.visible).all() and (fraction <= 1.0).all()


def test_ground_truth_visibility_follows_the_cameras(clean: Renderer) -> None:
    boxes = clean.boxes(0, SCENE)
    for camera_boxes in boxes.values():
        _check_boxes(camera_boxes, len(SCENE.agents))
    left, right = boxes["left"], boxes["right"]
    # Agent 1 is in the left half, agent 3 in front of the right goal; the ball is on the
    # centre spot, agent 2 near the halfway line: both cameras see those.
    assert left.visible.tolist() == [True, True, True, False]
    assert right.visible.tolist() == [True, False, True, True]
    assert left.inside_fraction[1] == 1.0 and right.inside_fraction[3] == 1.0


def test_a_figure_partly_outside_the_image_is_clipped(rig: Rig) -> None:
    camera = rig.cameras["left"]
    # Find a point on the near touchline at the image's bottom-right corner region.
    xs = np.linspace(40.0, 70.0, 601)
    pixels, _ = project(camera, np.stack([xs, np.full_like(xs, 1.0), 0 * xs], axis=1))
    x_edge = float(xs[np.argmin(np.abs(pixels[:, 0] - (WIDTH - 1)))])
    scene = make_simulation([(x_edge, 1.0, 1.57)])
    boxes = Renderer(rig, scene.agents, style=RenderStyle.clean()).boxes(0, scene)["left"]
    _check_boxes(boxes, 2)
    assert boxes.visible[1] and 0.05 < boxes.inside_fraction[1] < 0.95
    assert boxes.boxes[1, 2] == WIDTH - 0.5


def test_drawn_figures_lie_inside_their_boxes(clean: Renderer) -> None:
    images, boxes = clean.render_with_boxes(0, SCENE)
    assert clean.boxes(0, SCENE)["left"].boxes.tolist() == boxes["left"].boxes.tolist()
    for name, image in images.items():
        changed = np.abs(image.astype(np.int16) - clean.background(name)).max(axis=2) > 0
        inside = np.zeros_like(changed)
        camera_boxes = boxes[name]
        for i in np.flatnonzero(camera_boxes.visible):
            x1, y1, x2, y2 = camera_boxes.boxes[i]
            # Pixel i covers [i - 0.5, i + 0.5]: the pixels the box touches.
            rows = np.s_[int(np.ceil(y1 - 0.5)) : int(np.floor(y2 + 0.5)) + 1]
            cols = np.s_[int(np.ceil(x1 - 0.5)) : int(np.floor(x2 + 0.5)) + 1]
            box = (rows, cols)
            inside[box] = True
            # Each visible agent is actually drawn in its box.
            assert changed[box].mean() > 0.15, (name, i)
        assert changed.any() and not (changed & ~inside).any(), name


def test_exposure_differs_between_cameras_but_geometry_does_not(rig: Rig, noisy: Renderer) -> None:
    flat = Renderer(rig, SCENE.agents, seed=3, style=RenderStyle(exposure=False))
    exposed = noisy.render(0, SCENE)
    plain = flat.render(0, SCENE)
    for name in ("left", "right"):
        for a, b in zip(noisy.boxes(0, SCENE)[name], flat.boxes(0, SCENE)[name], strict=True):
            np.testing.assert_array_equal(a, b)
    # Each camera's colour response relative to the neutral one: the two cameras differ.
    gains = {
        name: exposed[name].reshape(-1, 3).mean(axis=0) / plain[name].reshape(-1, 3).mean(axis=0)
        for name in exposed
    }
    assert np.abs(gains["left"] - gains["right"]).max() > 0.03
    # Same scene content (the grass's mean colour) is recorded differently by the two cameras.
    ratio = {n: exposed[n][..., 2].mean() / exposed[n][..., 0].mean() for n in exposed}
    plain_ratio = {n: plain[n][..., 2].mean() / plain[n][..., 0].mean() for n in plain}
    shift = ratio["right"] / ratio["left"] - plain_ratio["right"] / plain_ratio["left"]
    assert abs(shift) > 0.03


def _models_dir() -> Path:
    configured = os.environ.get("PV_MODELS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "models"


def _yolox_people(session, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimal YOLOX-nano decode: person boxes (x1, y1, x2, y2 in crop pixels) and scores."""
    size = 416
    height, width = crop.shape[:2]
    ratio = min(size / height, size / width)
    canvas = np.full((size, size, 3), 114, np.float32)
    resized = cv2.resize(crop, (round(width * ratio), round(height * ratio)))
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    (output,) = session.run(None, {"images": canvas.transpose(2, 0, 1)[None]})
    raw = output[0]
    grids, strides = [], []
    for step in (8, 16, 32):
        cells = size // step
        yy, xx = np.mgrid[0:cells, 0:cells]
        grids.append(np.stack([xx.ravel(), yy.ravel()], axis=1))
        strides.append(np.full(cells * cells, step))
    grid, stride = np.concatenate(grids), np.concatenate(strides)[:, None]
    centre = (raw[:, :2] + grid) * stride / ratio
    wh = np.exp(raw[:, 2:4]) * stride / ratio
    scores = raw[:, 4] * raw[:, 5]  # objectness x class 0 (person)
    return np.concatenate([centre - wh / 2, centre + wh / 2], axis=1), scores


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(a[:, 0], b[0]), np.maximum(a[:, 1], b[1])
    x2, y2 = np.minimum(a[:, 2], b[2]), np.minimum(a[:, 3], b[3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[2] - b[0]) * (b[3] - b[1])
    return np.asarray(inter / (area - inter))


def test_yolox_finds_rendered_players() -> None:
    """The real COCO detector recognises our figures as people, on 416-px crops at 1080p."""
    model = _models_dir() / "yolox_nano.onnx"
    if not model.is_file():
        pytest.skip(f"YOLOX model not found at {model} (set PV_MODELS_DIR)")
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    # A near player, one in midfield and one on the far side, facing different ways.
    scene = make_simulation([(30.0, 6.0, 0.4), (40.0, 30.0, 2.5), (25.0, 55.0, -1.8)])
    rig = default_rig(1920, 1080)
    images, boxes = Renderer(rig, scene.agents, seed=5).render_with_boxes(0, scene)
    image, left = images["left"], boxes["left"]
    for agent in (1, 2, 3):
        assert left.visible[agent] and left.inside_fraction[agent] == 1.0
        box = left.boxes[agent].astype(np.float64)
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x0 = int(np.clip(cx - 208, 0, image.shape[1] - 416))
        y0 = int(np.clip(cy - 208, 0, image.shape[0] - 416))
        found, scores = _yolox_people(session, image[y0 : y0 + 416, x0 : x0 + 416])
        overlap = _iou(found, box - [x0, y0, x0, y0])
        best = float(scores[overlap > 0.4].max(initial=0.0))
        assert best > 0.3, (agent, best, box[3] - box[1])
