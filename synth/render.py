"""Renders the synthetic match as the two cameras of a `Rig` would film it.

Construction precomputes, per camera, everything that does not move: the background (pitch,
markings, goals, stand, sky; see `synth.pitch`) already passed through the camera's
exposure curve, each agent's colours through the same curve, and a buffer of sensor noise. A frame
then costs one background copy, a few hundred small antialiased cv2 primitives (figures, shadows,
ball) and two saturating adds of a noise window; no full-frame float work. Everything is
deterministic in ``seed``.

The ground truth (`CameraBoxes`) comes from the same projected keypoints that are drawn, so a box
always contains its figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np
import numpy.typing as npt

from polyvision.geometry import CameraModel, Rig, project
from polyvision.geometry.pitch import BALL_RADIUS_M
from synth.pitch import SceneryStyle, render_background
from synth.render_figure import (
    AA_MARGIN_PX,
    KEYPOINT_COUNT,
    KEYPOINT_RADIUS_M,
    Palette,
    body_keypoints,
    draw_figure,
)
from synth.types import Agent, Role, Simulation

UInt8Array = npt.NDArray[np.uint8]
Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
BGR = tuple[int, int, int]

# Direction towards the sun (from the far-left, high): shadows fall towards the near right.
_SUN = np.array([-0.45, 0.55, 1.0]) / np.linalg.norm([-0.45, 0.55, 1.0])
_SHADOW_POINTS = 14
_SHADOW_ALPHA = 0.42
_NOISE_PAD = 24
_NOISE_OFFSETS = 97  # distinct noise windows, cycled by frame index


@dataclass(frozen=True)
class RenderStyle:
    """What the renderer adds on top of the geometry.

    Attributes:
        scenery: Look of the static scenery.
        sensor_noise: Standard deviation of the sensor noise, grey levels (0 = none).
        shadows: Whether players and the ball cast shadows.
        exposure: Whether the cameras get their (different) exposure and white balance.
    """

    scenery: SceneryStyle = field(default_factory=SceneryStyle)
    sensor_noise: float = 2.5
    shadows: bool = True
    exposure: bool = True

    @classmethod
    def clean(cls) -> RenderStyle:
        """No noise, no shadows, uniform grass: for tests that measure pixels exactly."""
        return cls(
            scenery=SceneryStyle(stripes=0.0, grain=0.0, vignette=0.0),
            sensor_noise=0.0,
            shadows=False,
        )


class CameraBoxes(NamedTuple):
    """Ground truth of one camera at one frame; row ``i`` is ``simulation.agents[i]``.

    A named tuple, so ``boxes, visible, inside_fraction = per_camera[name]`` works too.

    Attributes:
        boxes: ``[N, 4]`` float32 ``x1, y1, x2, y2`` of the drawn figure's extent, clipped to the
            image (zeros where not visible).
        visible: ``[N]`` in front of the camera and the box overlapping the image.
        inside_fraction: ``[N]`` float32 fraction of the unclipped box's area inside the image.
    """

    boxes: Float32Array
    visible: BoolArray
    inside_fraction: Float32Array


@dataclass(frozen=True)
class _Exposure:
    gain_bgr: tuple[float, float, float]
    gamma: float

    def lut(self) -> UInt8Array:
        x = np.arange(256, dtype=np.float64) / 255.0
        channels = [np.clip(255.0 * x**self.gamma * g, 0, 255) for g in self.gain_bgr]
        return np.round(np.stack(channels, axis=-1)).astype(np.uint8).reshape(1, 256, 3)


def _camera_exposure(index: int, seed: int) -> _Exposure:
    """Each camera's exposure: the right one a little brighter and warmer, plus a seeded jitter."""
    rng = np.random.default_rng([seed, 10, index])
    base = ((1.0, 1.0, 1.0), 1.0) if index % 2 == 0 else ((0.95, 1.02, 1.09), 0.95)
    jitter = rng.uniform(-0.015, 0.015, 3)
    gains = tuple(float(g * (1 + j)) for g, j in zip(base[0], jitter, strict=True))
    return _Exposure(gain_bgr=(gains[0], gains[1], gains[2]), gamma=base[1])


def _bgr(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    return (float(rgb[2]), float(rgb[1]), float(rgb[0]))


def _through(lut: UInt8Array, colour: tuple[float, float, float], shade: float = 1.0) -> BGR:
    """A scene colour as the camera records it."""
    values = [int(lut[0, min(255, max(0, round(c * shade))), i]) for i, c in enumerate(colour)]
    return (values[0], values[1], values[2])


_HAIR_RGB = ((35, 25, 20), (60, 40, 25), (20, 18, 16), (110, 80, 45), (150, 120, 80))


@dataclass
class _CameraState:
    camera: CameraModel
    background: UInt8Array
    lut: UInt8Array
    palettes: list[Palette | None]
    noise_add: UInt8Array | None
    noise_sub: UInt8Array | None
    offsets: npt.NDArray[np.intp]


@dataclass
class _Projected:
    """One camera's projection of one frame, shared by drawing and ground truth."""

    keypoints: Float64Array  # [P, K, 2]
    scale: Float64Array  # [N] pixels per metre at each agent
    depth: Float64Array  # [N] camera-frame depth of each agent
    valid: BoolArray  # [N] every point in front of the camera
    shadows: Float64Array  # [N, S, 2]
    ball_px: Float64Array  # [2]
    near_left: BoolArray  # [N]
    facing: BoolArray  # [N]


class Renderer:
    """Draws frames of a `Simulation` for each camera of a `Rig`, with their ground truth.

    Args:
        rig: The cameras.
        agents: The simulation's agents (kits, skin, heights); frames must use the same list.
        seed: Seed of every random element (textures, noise, exposure jitter, hair colours).
        style: What to add on top of the geometry; `RenderStyle()` by default.
    """

    def __init__(
        self,
        rig: Rig,
        agents: Sequence[Agent],
        seed: int = 0,
        style: RenderStyle | None = None,
    ) -> None:
        self.rig = rig
        self.agents = list(agents)
        self.seed = seed
        self.style = style or RenderStyle()
        self._ball = next(i for i, a in enumerate(self.agents) if a.role is Role.ball)
        self._players = np.array([i for i in range(len(self.agents)) if i != self._ball], np.intp)
        self._heights = np.array([a.height_m for a in self.agents], np.float64)
        rng = np.random.default_rng([seed, 20])
        hair = [_HAIR_RGB[int(i)] for i in rng.integers(0, len(_HAIR_RGB), len(self.agents))]
        self._cameras: dict[str, _CameraState] = {}
        for index, (name, camera) in enumerate(rig.cameras.items()):
            exposure = (
                _camera_exposure(index, seed) if self.style.exposure else _Exposure((1, 1, 1), 1)
            )
            lut = exposure.lut()
            background = render_background(camera, self.style.scenery, seed)
            palettes = [
                None if a.role is Role.ball else self._palette(a, hair[i], lut)
                for i, a in enumerate(self.agents)
            ]
            noise_add, noise_sub = self._noise(camera, index)
            offsets = np.random.default_rng([seed, 30, index]).integers(
                0, _NOISE_PAD + 1, (_NOISE_OFFSETS, 2)
            )
            self._cameras[name] = _CameraState(
                camera=camera,
                background=np.ascontiguousarray(cv2.LUT(background, lut)),
                lut=lut,
                palettes=palettes,
                noise_add=noise_add,
                noise_sub=noise_sub,
                offsets=offsets.astype(np.intp),
            )

    @staticmethod
    def _palette(agent: Agent, hair: tuple[int, int, int], lut: UInt8Array) -> Palette:
        shade = 0.6  # the side facing away from the sun
        shirt, shorts, socks = _bgr(agent.kit.shirt), _bgr(agent.kit.shorts), _bgr(agent.kit.socks)
        skin = _bgr(agent.skin)
        return Palette(
            shirt=_through(lut, shirt),
            shirt_dark=_through(lut, shirt, shade),
            shorts=_through(lut, shorts),
            shorts_dark=_through(lut, shorts, shade),
            socks=_through(lut, socks),
            socks_dark=_through(lut, socks, shade),
            skin=_through(lut, skin),
            skin_dark=_through(lut, skin, 0.7),
            hair=_through(lut, _bgr(hair)),
            shoes=_through(lut, (28.0, 28.0, 32.0)),
            long_sleeves=agent.role is Role.goalkeeper,
        )

    def _noise(self, camera: CameraModel, index: int) -> tuple[UInt8Array | None, ...]:
        sigma = self.style.sensor_noise
        if sigma <= 0:
            return None, None
        width, height = camera.image_size
        rng = np.random.default_rng([self.seed, 40, index])
        shape = (height + _NOISE_PAD, width + _NOISE_PAD, 3)
        noise = rng.standard_normal(shape, dtype=np.float32)
        # Some noise is shared by the three channels (luma), the rest is per channel.
        noise += 0.5 * rng.standard_normal((*shape[:2], 1), dtype=np.float32)
        rounded = np.round(noise * (sigma / math.sqrt(1.25)))
        # Split into a positive and a negative part: two saturating uint8 ops per frame are
        # cheaper than any signed arithmetic on a full frame.
        return (
            np.clip(rounded, 0, 255).astype(np.uint8),
            np.clip(-rounded, 0, 255).astype(np.uint8),
        )

    @property
    def camera_names(self) -> tuple[str, ...]:
        """The rig's camera names, in rig order."""
        return tuple(self._cameras)

    def background(self, camera: str) -> UInt8Array:
        """A copy of the camera's empty-stadium image, as rendered before noise."""
        return self._cameras[camera].background.copy()

    def render(self, frame_index: int, simulation: Simulation) -> dict[str, UInt8Array]:
        """Render one frame for every camera.

        Args:
            frame_index: Frame of ``simulation`` to draw.
            simulation: The simulation (its agents must be the renderer's).

        Returns:
            BGR uint8 image per camera name.
        """
        return self.render_with_boxes(frame_index, simulation)[0]

    def render_camera(self, camera: str, frame_index: int, simulation: Simulation) -> UInt8Array:
        """Render one frame for one camera (safe to call from one thread per camera).

        Args:
            camera: Camera name in the rig.
            frame_index: Frame of ``simulation`` to draw.
            simulation: The simulation (its agents must be the renderer's).

        Returns:
            BGR uint8 image.
        """
        self._check(frame_index, simulation)
        position, keypoints = self._world_state(frame_index, simulation)
        cam = self._cameras[camera]
        return self._draw(cam, self._project(cam, position, keypoints), frame_index, position)

    def boxes(self, frame_index: int, simulation: Simulation) -> dict[str, CameraBoxes]:
        """Ground-truth boxes of every agent in every camera, without drawing anything."""
        self._check(frame_index, simulation)
        state = self._world_state(frame_index, simulation)
        return {
            name: self._boxes(cam, self._project(cam, *state))
            for name, cam in self._cameras.items()
        }

    def render_with_boxes(
        self, frame_index: int, simulation: Simulation
    ) -> tuple[dict[str, UInt8Array], dict[str, CameraBoxes]]:
        """Render one frame for every camera and return the matching ground truth."""
        self._check(frame_index, simulation)
        state = self._world_state(frame_index, simulation)
        images: dict[str, UInt8Array] = {}
        boxes: dict[str, CameraBoxes] = {}
        for name, cam in self._cameras.items():
            projected = self._project(cam, *state)
            images[name] = self._draw(cam, projected, frame_index, state[0])
            boxes[name] = self._boxes(cam, projected)
        return images, boxes

    def _check(self, frame_index: int, simulation: Simulation) -> None:
        if len(simulation.agents) != len(self.agents):
            raise ValueError("the simulation's agents differ from the renderer's")
        if not 0 <= frame_index < simulation.frame_count:
            raise IndexError(f"frame {frame_index} outside 0..{simulation.frame_count - 1}")

    def _world_state(
        self, frame_index: int, simulation: Simulation
    ) -> tuple[Float64Array, Float64Array]:
        """Agent positions ``[N, 3]`` and player keypoints ``[P, K, 3]`` at a frame."""
        position = simulation.position[frame_index].astype(np.float64)
        players = self._players
        speed = np.linalg.norm(simulation.velocity[frame_index, players, :2], axis=1)
        keypoints = body_keypoints(
            position[players],
            simulation.heading[frame_index, players],
            simulation.stride_phase[frame_index, players],
            speed,
            self._heights[players],
        )
        return position, keypoints

    def _project(
        self, cam: _CameraState, position: Float64Array, keypoints: Float64Array
    ) -> _Projected:
        camera = cam.camera
        count = len(self.agents)
        players = self._players
        heights = self._heights
        # Shadows: ellipses on the ground, from the feet away from the sun.
        away = -_SUN[:2] / np.linalg.norm(_SUN[:2])
        across = np.array([-away[1], away[0]])
        t = np.linspace(0.0, 2.0 * math.pi, _SHADOW_POINTS, endpoint=False)
        ball_z = max(float(position[self._ball, 2]), BALL_RADIUS_M)
        length = np.where(np.arange(count) == self._ball, BALL_RADIUS_M, 0.5 * heights)
        breadth = np.where(np.arange(count) == self._ball, BALL_RADIUS_M, 0.13 * heights)
        # The ball's shadow is cast along the sun from its height; a player's starts at the feet.
        offset = np.where(
            np.arange(count) == self._ball, ball_z * _SUN[2] ** -1 * np.hypot(*_SUN[:2]), length
        )
        centre = position[:, :2] + offset[:, None] * away
        shadow = (
            centre[:, None, :]
            + (length[:, None] * np.cos(t))[..., None] * away
            + (breadth[:, None] * np.sin(t))[..., None] * across
        )
        shadow3 = np.concatenate([shadow, np.zeros((count, _SHADOW_POINTS, 1))], axis=2)
        base = position * np.array([1.0, 1.0, 0.0])
        top = base + np.array([0.0, 0.0, 1.0]) * heights[:, None]
        ball = position[self._ball]
        ball_points = np.array([ball, ball + np.array([0.0, 0.0, BALL_RADIUS_M])])
        points = np.concatenate(
            [keypoints.reshape(-1, 3), shadow3.reshape(-1, 3), base, top, ball_points]
        )
        pixels, ok = project(camera, points)
        n_kp = len(players) * KEYPOINT_COUNT
        n_sh = count * _SHADOW_POINTS
        kp_px = pixels[:n_kp].reshape(len(players), KEYPOINT_COUNT, 2)
        kp_ok = ok[:n_kp].reshape(len(players), KEYPOINT_COUNT).all(axis=1)
        shadow_px = pixels[n_kp : n_kp + n_sh].reshape(count, _SHADOW_POINTS, 2)
        base_px = pixels[n_kp + n_sh : n_kp + n_sh + count]
        top_px = pixels[n_kp + n_sh + count : n_kp + n_sh + 2 * count]
        base_ok = ok[n_kp + n_sh : n_kp + n_sh + count] & ok[n_kp + n_sh + count : -2]
        ball_px, ball_top = pixels[-2], pixels[-1]
        valid = base_ok.copy()
        valid[players] &= kp_ok
        valid[self._ball] = bool(ok[-2] and ok[-1])
        # A figure with a point far outside the image is either out of view or so close to the
        # camera's plane that its projection is meaningless (and overflows cv2's coordinates).
        limit = 4.0 * max(camera.image_size)
        far_out = np.abs(pixels).max(axis=1) > limit
        valid &= ~far_out[n_kp + n_sh : n_kp + n_sh + count] & ~far_out[n_kp + n_sh + count : -2]
        valid[players] &= ~far_out[:n_kp].reshape(len(players), KEYPOINT_COUNT).any(axis=1)
        valid[self._ball] &= not (far_out[-2] or far_out[-1])
        scale = np.linalg.norm(top_px - base_px, axis=1) / heights
        scale[self._ball] = float(np.linalg.norm(ball_top - ball_px)) / BALL_RADIUS_M
        scale[~valid] = 0.0
        rotation, tvec = camera.rotation, camera.tvec
        depth = (position @ rotation.T + tvec)[:, 2]
        # Which side of each figure faces the camera, and whether its face does.
        to_camera = camera.center[:2] - position[:, :2]
        heading_vec = np.zeros((count, 2))
        left_vec = np.zeros((count, 2))
        if len(players):
            shoulder_dir = keypoints[:, 2, :2] - keypoints[:, 3, :2]  # right to left shoulder
            left_vec[players] = shoulder_dir
            heading_vec[players] = np.stack([shoulder_dir[:, 1], -shoulder_dir[:, 0]], axis=1)
        near_left = np.einsum("ij,ij->i", left_vec, to_camera) > 0
        facing = np.einsum("ij,ij->i", heading_vec, to_camera) > 0
        return _Projected(
            keypoints=kp_px,
            scale=scale,
            depth=depth,
            valid=valid,
            shadows=shadow_px,
            ball_px=ball_px,
            near_left=near_left,
            facing=facing,
        )

    def _extents(self, cam: _CameraState, projected: _Projected) -> Float64Array:
        """Unclipped ``[N, 4]`` boxes of what is drawn for each agent (garbage where invalid)."""
        count = len(self.agents)
        extents = np.zeros((count, 4))
        if len(self._players):
            sizes = (
                projected.scale[self._players] * self._heights[self._players] / 1.80
            )  # pixels per reference metre, as the figure drawing scales its strokes
            radius = KEYPOINT_RADIUS_M[None, :] * sizes[:, None] + AA_MARGIN_PX
            kp = projected.keypoints
            extents[self._players, 0] = (kp[:, :, 0] - radius).min(axis=1)
            extents[self._players, 1] = (kp[:, :, 1] - radius).min(axis=1)
            extents[self._players, 2] = (kp[:, :, 0] + radius).max(axis=1)
            extents[self._players, 3] = (kp[:, :, 1] + radius).max(axis=1)
        r = self._ball_radius_px(projected) + AA_MARGIN_PX
        bx, by = projected.ball_px
        extents[self._ball] = (bx - r, by - r, bx + r, by + r)
        return extents

    def _ball_radius_px(self, projected: _Projected) -> float:
        return max(1.0, float(projected.scale[self._ball]) * BALL_RADIUS_M)

    def _boxes(self, cam: _CameraState, projected: _Projected) -> CameraBoxes:
        width, height = cam.camera.image_size
        extents = self._extents(cam, projected)
        # Pixel i covers [i - 0.5, i + 0.5]: the image spans [-0.5, size - 0.5].
        clipped = extents.copy()
        clipped[:, [0, 2]] = np.clip(clipped[:, [0, 2]], -0.5, width - 0.5)
        clipped[:, [1, 3]] = np.clip(clipped[:, [1, 3]], -0.5, height - 0.5)
        area = (extents[:, 2] - extents[:, 0]) * (extents[:, 3] - extents[:, 1])
        inside = np.maximum(clipped[:, 2] - clipped[:, 0], 0) * np.maximum(
            clipped[:, 3] - clipped[:, 1], 0
        )
        visible = projected.valid & (inside > 0)
        fraction = np.where(visible, inside / np.maximum(area, 1e-9), 0.0)
        clipped[~visible] = 0.0
        return CameraBoxes(
            boxes=clipped.astype(np.float32),
            visible=visible,
            inside_fraction=fraction.astype(np.float32),
        )

    def _draw(
        self, cam: _CameraState, projected: _Projected, frame_index: int, position: Float64Array
    ) -> UInt8Array:
        image = cam.background.copy()
        width, height = cam.camera.image_size
        extents = self._extents(cam, projected)
        on_image = (
            projected.valid
            & (extents[:, 2] >= -0.5)
            & (extents[:, 0] <= width - 0.5)
            & (extents[:, 3] >= -0.5)
            & (extents[:, 1] <= height - 0.5)
        )
        if self.style.shadows:
            for i in np.flatnonzero(on_image):
                self._shade(image, projected.shadows[i])
        player_row = {int(agent): row for row, agent in enumerate(self._players)}
        # Painter's order: farthest first.
        for i in sorted(np.flatnonzero(on_image), key=lambda j: -projected.depth[j]):
            index = int(i)
            if index == self._ball:
                self._draw_ball(image, projected, position[index])
                continue
            palette = cam.palettes[index]
            assert palette is not None
            draw_figure(
                image,
                projected.keypoints[player_row[index]],
                float(projected.scale[index]),
                float(self._heights[index]),
                palette,
                near_left=bool(projected.near_left[index]),
                facing_camera=bool(projected.facing[index]),
            )
        if cam.noise_add is not None and cam.noise_sub is not None:
            dy, dx = cam.offsets[frame_index % len(cam.offsets)]
            window = np.s_[dy : dy + height, dx : dx + width]
            cv2.add(image, cam.noise_add[window], dst=image)
            cv2.subtract(image, cam.noise_sub[window], dst=image)
        return image

    @staticmethod
    def _shade(image: UInt8Array, polygon: Float64Array) -> None:
        """Darken a ground polygon, translucently, touching only its bounding rectangle."""
        height, width = image.shape[:2]
        x0 = max(0, math.floor(polygon[:, 0].min()) - 1)
        y0 = max(0, math.floor(polygon[:, 1].min()) - 1)
        x1 = min(width, math.ceil(polygon[:, 0].max()) + 2)
        y1 = min(height, math.ceil(polygon[:, 1].max()) + 2)
        if x0 >= x1 or y0 >= y1:
            return
        roi = image[y0:y1, x0:x1]
        dark = roi.copy()
        points = np.round((polygon - [x0, y0]) * 16).astype(np.int32)
        cv2.fillPoly(dark, [points], (0, 0, 0), cv2.LINE_AA, 4)
        cv2.addWeighted(roi, 1.0 - _SHADOW_ALPHA, dark, _SHADOW_ALPHA, 0.0, dst=roi)
        # addWeighted leaves pixels outside the polygon unchanged (a*(1-k) + a*k == a).

    def _draw_ball(self, image: UInt8Array, projected: _Projected, position: Float64Array) -> None:
        radius = self._ball_radius_px(projected)
        cx, cy = projected.ball_px
        centre = (round(float(cx) * 16), round(float(cy) * 16))
        cv2.circle(image, centre, round(radius * 16), (235, 235, 235), -1, cv2.LINE_AA, 4)
        if radius >= 2.5:
            # Dark patches that turn as the ball rolls (angle from the distance along the pitch).
            spin = float(position[0] + position[1]) / BALL_RADIUS_M
            for k in range(3):
                angle = spin + k * 2.0 * math.pi / 3
                px = cx + 0.5 * radius * math.cos(angle)
                py = cy + 0.5 * radius * math.sin(angle) * 0.8
                patch = (round(px * 16), round(py * 16))
                cv2.circle(image, patch, round(radius * 0.3 * 16), (40, 40, 40), -1, cv2.LINE_AA, 4)
