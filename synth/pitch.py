"""Static scenery of the synthetic match: pitch texture, markings, goals, stand and sky.

Everything here is computed once per camera. A top-down texture of the pitch (grass with mowing
stripes and every standard line marking) is drawn in metres; each camera's background is then
made by casting the ray of every (supersampled) image pixel onto the ground plane or the far
stand and sampling the matching texture with one ``cv2.remap``. Because the rays come from the
same `CameraModel` that ``rig.json`` stores, a pitch point is drawn exactly where the rig projects
it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from polyvision.geometry import UNDISTORT_CRITERIA, CameraModel, project
from polyvision.geometry.pitch import PITCH_LENGTH_M, PITCH_WIDTH_M

UInt8Array = npt.NDArray[np.uint8]
Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]

# Standard markings of a 105 x 68 m pitch (Law 1), metres.
LINE_WIDTH_M = 0.12
CENTRE_CIRCLE_RADIUS_M = 9.15
SPOT_RADIUS_M = 0.11
PENALTY_AREA_DEPTH_M = 16.5
PENALTY_AREA_WIDTH_M = 40.32
GOAL_AREA_DEPTH_M = 5.5
GOAL_AREA_WIDTH_M = 18.32
PENALTY_SPOT_DISTANCE_M = 11.0
CORNER_ARC_RADIUS_M = 1.0
GOAL_WIDTH_M = 7.32
GOAL_HEIGHT_M = 2.44
GOAL_DEPTH_M = 2.0

CENTRE_SPOT = (PITCH_LENGTH_M / 2, PITCH_WIDTH_M / 2)
PENALTY_SPOTS = (
    (PENALTY_SPOT_DISTANCE_M, PITCH_WIDTH_M / 2),
    (PITCH_LENGTH_M - PENALTY_SPOT_DISTANCE_M, PITCH_WIDTH_M / 2),
)

# Extent of the ground texture, metres: grass a few metres beyond the lines, then a concrete
# surround; the far stand is a vertical wall at ``y = STAND_Y_M``.
_TEX_X = (-30.0, PITCH_LENGTH_M + 30.0)
_TEX_Y = (-16.0, PITCH_WIDTH_M + 10.0)
_GRASS_X = (-8.0, PITCH_LENGTH_M + 8.0)
_GRASS_Y = (-8.0, PITCH_WIDTH_M + 6.0)
_TEX_PX_PER_M = 32.0
STAND_Y_M = PITCH_WIDTH_M + 10.0
STAND_HEIGHT_M = 18.0
_STAND_X = (-150.0, PITCH_LENGTH_M + 150.0)
_STAND_PX_PER_M = 12.0
# Mowing stripes run parallel to the goal lines; one is centred on the halfway line so the centre
# and penalty spots sit well inside a stripe.
_STRIPE_WIDTH_M = PITCH_LENGTH_M / 20

_GRASS_BGR = (52.0, 128.0, 62.0)
_CONCRETE_BGR = (112.0, 116.0, 120.0)
_LINE_BGR = (232, 236, 234)
_SKY_HORIZON_BGR = np.array([228.0, 214.0, 196.0])
_SKY_ZENITH_BGR = np.array([205.0, 150.0, 96.0])


@dataclass(frozen=True)
class SceneryStyle:
    """How the static scenery looks.

    Attributes:
        stripes: Relative brightness difference of alternate mowing stripes (0 = none).
        grain: Strength of the grass's uneven patches and fine grain (0 = uniform grass).
        vignette: Relative darkening of the image corners (0 = none).
        blur_sigma_px: Optical blur of the lens, in output pixels (0 = none).
        supersample: Rays per pixel side when sampling the scenery (0 = chosen from the size).
    """

    stripes: float = 0.07
    grain: float = 1.0
    vignette: float = 0.12
    blur_sigma_px: float = 0.6
    supersample: int = 0


def _mark(value: float, origin: float) -> int:
    """Texture coordinate of a pitch coordinate, in 1/16 pixel (cv2 ``shift=4``)."""
    return round((value - origin) * _TEX_PX_PER_M * 16)


def _draw_markings(texture: UInt8Array) -> None:
    """Draw every standard line marking, centred on its nominal position, antialiased."""
    x0, y0 = _TEX_X[0], _TEX_Y[0]
    thickness = max(1, round(LINE_WIDTH_M * _TEX_PX_PER_M))
    aa = cv2.LINE_AA

    def pt(x: float, y: float) -> tuple[int, int]:
        return (_mark(x, x0), _mark(y, y0))

    def line(a: tuple[float, float], b: tuple[float, float]) -> None:
        cv2.line(texture, pt(*a), pt(*b), _LINE_BGR, thickness, aa, 4)

    def arc(center: tuple[float, float], radius: float, start: float, end: float) -> None:
        axes = (round(radius * _TEX_PX_PER_M * 16),) * 2
        cv2.ellipse(texture, pt(*center), axes, 0.0, start, end, _LINE_BGR, thickness, aa, 4)

    def spot(center: tuple[float, float]) -> None:
        radius = round(SPOT_RADIUS_M * _TEX_PX_PER_M * 16)
        cv2.circle(texture, pt(*center), radius, _LINE_BGR, -1, aa, 4)

    length, width = PITCH_LENGTH_M, PITCH_WIDTH_M
    mid_y = width / 2
    for a, b in (
        ((0, 0), (length, 0)),
        ((0, width), (length, width)),
        ((0, 0), (0, width)),
        ((length, 0), (length, width)),
        ((length / 2, 0), (length / 2, width)),
    ):
        line(a, b)
    arc(CENTRE_SPOT, CENTRE_CIRCLE_RADIUS_M, 0, 360)
    spot(CENTRE_SPOT)
    # Half-angle of the penalty arc: the part of the circle around the spot outside the area.
    arc_half = math.degrees(
        math.acos((PENALTY_AREA_DEPTH_M - PENALTY_SPOT_DISTANCE_M) / CENTRE_CIRCLE_RADIUS_M)
    )
    for goal_x, inward in ((0.0, 1.0), (length, -1.0)):
        for depth, box_width in (
            (PENALTY_AREA_DEPTH_M, PENALTY_AREA_WIDTH_M),
            (GOAL_AREA_DEPTH_M, GOAL_AREA_WIDTH_M),
        ):
            near, far = mid_y - box_width / 2, mid_y + box_width / 2
            inner = goal_x + inward * depth
            line((goal_x, near), (inner, near))
            line((inner, near), (inner, far))
            line((inner, far), (goal_x, far))
        penalty_spot = (goal_x + inward * PENALTY_SPOT_DISTANCE_M, mid_y)
        spot(penalty_spot)
        facing = 0.0 if inward > 0 else 180.0
        arc(penalty_spot, CENTRE_CIRCLE_RADIUS_M, facing - arc_half, facing + arc_half)
    for corner, start in (
        ((0, 0), 0),
        ((length, 0), 90),
        ((length, width), 180),
        ((0, width), 270),
    ):
        arc(corner, CORNER_ARC_RADIUS_M, start, start + 90)


@functools.lru_cache(maxsize=4)
def pitch_texture(style: SceneryStyle, seed: int) -> UInt8Array:
    """Top-down BGR texture of the ground, `_TEX_PX_PER_M` pixels per metre (cached, read-only).

    Texture pixel ``(u, v)`` is pitch point ``(x0 + u / s, y0 + v / s)``.
    """
    rng = np.random.default_rng([seed, 1])
    s = _TEX_PX_PER_M
    w = round((_TEX_X[1] - _TEX_X[0]) * s)
    h = round((_TEX_Y[1] - _TEX_Y[0]) * s)
    xs = _TEX_X[0] + np.arange(w, dtype=np.float32) / s
    ys = _TEX_Y[0] + np.arange(h, dtype=np.float32) / s
    stripe_index = np.floor((xs - PITCH_LENGTH_M / 2 + _STRIPE_WIDTH_M / 2) / _STRIPE_WIDTH_M)
    stripe = (1.0 + style.stripes * np.where(stripe_index % 2 == 0, 0.5, -0.5)).astype(np.float32)
    factor = np.ones((h, w), np.float32)
    if style.grain > 0:
        # Uneven patches: smooth noise at one sample per metre, upsampled; and a fine grain, one
        # tile repeated (it is far below the image's resolution anyway).
        coarse = rng.normal(0.0, 0.05 * style.grain, (h // round(s) + 2, w // round(s) + 2))
        factor *= 1.0 + cv2.resize(coarse.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        tile = rng.normal(0.0, 0.05 * style.grain, (256, 256)).astype(np.float32)
        fine = np.tile(tile, (h // 256 + 1, w // 256 + 1))[:h, :w]
        # Only on the grass: on the distant concrete the repeated tile would show as moire.
        fine[:, (xs < _GRASS_X[0]) | (xs > _GRASS_X[1])] = 0.0
        fine[(ys < _GRASS_Y[0]) | (ys > _GRASS_Y[1])] = 0.0
        factor += fine
    # Concrete everywhere, then grass (striped) over its rectangle.
    gx = np.flatnonzero((xs >= _GRASS_X[0]) & (xs <= _GRASS_X[1]))
    gy = np.flatnonzero((ys >= _GRASS_Y[0]) & (ys <= _GRASS_Y[1]))
    grass = np.s_[gy[0] : gy[-1] + 1, gx[0] : gx[-1] + 1]
    channels = []
    for g, c in zip(_GRASS_BGR, _CONCRETE_BGR, strict=True):
        plane = factor * c
        plane[grass] = factor[grass] * (stripe[gx[0] : gx[-1] + 1] * g)
        channels.append(cv2.convertScaleAbs(plane))
    texture = np.asarray(cv2.merge(channels), dtype=np.uint8)
    _draw_markings(texture)
    texture.flags.writeable = False
    return np.asarray(texture, dtype=np.uint8)


@functools.lru_cache(maxsize=4)
def stand_texture(seed: int) -> UInt8Array:
    """BGR texture of the far stand, a vertical wall at ``y = STAND_Y_M`` (cached, read-only).

    Texture pixel ``(u, v)`` is the stand point ``x = x0 + u / s`` at height
    ``z = STAND_HEIGHT_M - v / s``. Bottom to top: advertising boards, a wall, rows of seats with
    a speckled crowd, the roof's edge.
    """
    rng = np.random.default_rng([seed, 2])
    s = _STAND_PX_PER_M
    w = round((_STAND_X[1] - _STAND_X[0]) * s)
    h = round(STAND_HEIGHT_M * s)

    def row(z: float) -> int:
        return min(h, max(0, round((STAND_HEIGHT_M - z) * s)))

    image = np.empty((h, w, 3), np.uint8)
    image[:] = (70, 70, 74)
    # Seating: alternating rows of two seat colours under a crowd of muted coloured dots.
    top, bottom = row(16.5), row(2.2)
    for i, v in enumerate(range(top, bottom, 4)):
        image[v : v + 4] = (110, 62, 50) if i % 2 == 0 else (92, 52, 42)
    crowd = rng.random((bottom - top, w)) < 0.5
    grey = rng.integers(40, 170, (bottom - top, w, 1)).astype(np.int16)
    tint = rng.integers(-40, 40, (bottom - top, w, 3)).astype(np.int16)
    colours = np.clip(grey + tint, 0, 255).astype(np.uint8)
    seats = image[top:bottom]
    seats[crowd] = colours[crowd]
    image[top:bottom] = cv2.GaussianBlur(seats, (3, 3), 0.7)
    image[row(2.2) : row(1.0)] = (150, 150, 145)
    # Advertising boards: panels of saturated colours with a light band of "lettering".
    board_top, board_bottom = row(1.0), row(0.0)
    x = 0
    while x < w:
        width = int(rng.integers(round(5 * s), round(12 * s)))
        colour = tuple(int(c) for c in rng.integers(20, 240, 3))
        image[board_top:board_bottom, x : x + width] = colour
        letters = (board_top + board_bottom) // 2
        image[letters - 1 : letters + 2, x + width // 6 : x + width * 5 // 6] = (235, 235, 235)
        x += width
    image[: row(16.5)] = (45, 45, 50)
    image.flags.writeable = False
    return image


@functools.lru_cache(maxsize=4)
def _atlas(style: SceneryStyle, seed: int) -> tuple[UInt8Array, int, int]:
    """Ground texture, stand texture and a sky gradient in one image, so one remap samples all.

    Returns:
        The atlas, the row where the stand texture starts and the row of the sky gradient.
    """
    ground, stand = pitch_texture(style, seed), stand_texture(seed)
    pad = 4  # rows between the parts, so bilinear sampling at a part's edge stays inside it
    sky_width = 256
    width = max(ground.shape[1], stand.shape[1], sky_width)
    stand_row = ground.shape[0] + pad
    sky_row = stand_row + stand.shape[0] + pad
    atlas = np.zeros((sky_row + pad, width, 3), np.uint8)
    atlas[: ground.shape[0], : ground.shape[1]] = ground
    # Repeat the stand sideways: rays at the image's far corners meet its plane very far out.
    repeats = -(-width // stand.shape[1])
    atlas[stand_row : stand_row + stand.shape[0]] = np.tile(stand, (1, repeats, 1))[:, :width]
    t = (np.linspace(0.0, 1.0, sky_width) ** 0.6)[:, None]
    sky = _SKY_HORIZON_BGR + t * (_SKY_ZENITH_BGR - _SKY_HORIZON_BGR)
    atlas[sky_row - 1 : sky_row + 2, :sky_width] = sky.astype(np.uint8)[None]
    atlas.flags.writeable = False
    return atlas, stand_row, sky_row


def _normalised_grid(camera: CameraModel, ss: int) -> Float32Array:
    """Undistorted normalised coordinates of every subpixel centre, ``[H*ss, W*ss, 2]``.

    The iterative undistortion runs on a grid every 2 pixels (a tenth of the points) and is
    interpolated bilinearly by ``cv2.resize`` (an integer ratio, so its sample positions fall
    exactly on the subpixel centres): the lens model is so smooth that the interpolation error is
    below 1e-3 pixel, while undistorting every subpixel would dominate the construction time.
    """
    width, height = camera.image_size
    k = 2 * ss  # subpixels per coarse step
    margin = 2 * k  # extra subpixels on every side, cropped after resizing (resize clamps edges)
    coarse_w = -(-(width * ss + 2 * margin) // k)
    coarse_h = -(-(height * ss + 2 * margin) // k)

    def positions(count: int) -> Float64Array:
        # Coarse sample i sits at extended subpixel index k*i + (k-1)/2, as cv2.resize assumes.
        sub = k * np.arange(count, dtype=np.float64) + (k - 1) / 2 - margin
        return np.asarray((sub + 0.5) / ss - 0.5)

    grid = np.stack(np.meshgrid(positions(coarse_w), positions(coarse_h)), axis=-1)
    normalised = cv2.undistortPoints(
        grid.reshape(-1, 1, 2),
        camera.camera_matrix,
        camera.distortion,
        criteria=UNDISTORT_CRITERIA,
    )
    normalised = normalised.reshape(coarse_h, coarse_w, 2).astype(np.float32)
    fine = cv2.resize(normalised, (coarse_w * k, coarse_h * k), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(fine[margin : margin + height * ss, margin : margin + width * ss])


def _default_supersample(height: int) -> int:
    # Enough rays per pixel that thin far lines do not alias; fewer for large images, whose far
    # lines are wider in pixels and whose ray count would otherwise dominate construction time.
    if height >= 1000:
        return 2
    return 3 if height > 600 else 4


def _goal_segments() -> list[tuple[tuple[float, float, float], tuple[float, float, float], int]]:
    """3D segments of both goals: ``(start, end, kind)``, kind 0 = net, 1 = frame."""
    segments = []
    lo, hi = PITCH_WIDTH_M / 2 - GOAL_WIDTH_M / 2, PITCH_WIDTH_M / 2 + GOAL_WIDTH_M / 2
    for goal_x, out in ((0.0, -1.0), (PITCH_LENGTH_M, 1.0)):
        back = goal_x + out * GOAL_DEPTH_M
        net_top = GOAL_HEIGHT_M * 0.8
        # Net: lines across the back and the roof, every 0.5 m, and the two sides.
        for y in np.arange(lo, hi + 1e-6, 0.5):
            segments.append(((back, y, 0.0), (back, y, net_top), 0))
            segments.append(((goal_x, y, GOAL_HEIGHT_M), (back, y, net_top), 0))
        for z in np.arange(0.0, net_top + 1e-6, 0.5):
            segments.append(((back, lo, z), (back, hi, z), 0))
        for side in (lo, hi):
            segments.append(((goal_x, side, GOAL_HEIGHT_M), (back, side, net_top), 0))
            segments.append(((back, side, 0.0), (back, side, net_top), 0))
            segments.append(((goal_x, side, 0.0), (back, side, 0.0), 0))
        # Frame: two posts and the crossbar.
        segments.append(((goal_x, lo, 0.0), (goal_x, lo, GOAL_HEIGHT_M), 1))
        segments.append(((goal_x, hi, 0.0), (goal_x, hi, GOAL_HEIGHT_M), 1))
        segments.append(((goal_x, lo, GOAL_HEIGHT_M), (goal_x, hi, GOAL_HEIGHT_M), 1))
    return segments


def _draw_goals(image: UInt8Array, camera: CameraModel) -> None:
    segments = _goal_segments()
    ends = np.array([[a, b] for a, b, _ in segments], np.float64).reshape(-1, 3)
    flat_pixels, flat_valid = project(camera, ends)
    pixels = flat_pixels.reshape(-1, 2, 2)
    limit = 4.0 * max(camera.image_size)
    ok = flat_valid.reshape(-1, 2).all(axis=1) & (np.abs(flat_pixels).reshape(-1, 4).max(1) < limit)
    # Pixels per metre at each goal mouth, for the posts' thickness.
    mouths = np.array([[0.0, PITCH_WIDTH_M / 2, 0.0], [0.0, PITCH_WIDTH_M / 2, 1.0]])
    net = image.copy()
    frame: list[tuple[tuple[int, int], tuple[int, int], int]] = []
    for (a, _, kind), (pa, pb), good in zip(segments, pixels, ok, strict=True):
        if not good:
            continue
        p1 = (round(float(pa[0]) * 16), round(float(pa[1]) * 16))
        p2 = (round(float(pb[0]) * 16), round(float(pb[1]) * 16))
        if kind == 0:
            cv2.line(net, p1, p2, (215, 215, 215), 1, cv2.LINE_AA, 4)
            continue
        mouths[:, 0] = a[0]
        scale_pts, _ = project(camera, mouths)
        scale = float(np.linalg.norm(scale_pts[1] - scale_pts[0]))
        frame.append((p1, p2, max(1, round(0.12 * scale))))
    # The net is translucent; the frame, drawn over it, is not.
    cv2.addWeighted(image, 0.45, net, 0.55, 0.0, dst=image)
    for p1, p2, thickness in frame:
        cv2.line(image, p1, p2, (245, 245, 245), thickness, cv2.LINE_AA, 4)


def render_background(camera: CameraModel, style: SceneryStyle, seed: int) -> UInt8Array:
    """The camera's view of the empty stadium, BGR uint8, before exposure and noise.

    Args:
        camera: The camera.
        style: Look of the scenery.
        seed: Seed of the textures' randomness.

    Returns:
        ``[height, width, 3]`` image.
    """
    width, height = camera.image_size
    ss = style.supersample or _default_supersample(height)
    normalised = _normalised_grid(camera, ss)
    rotation_t = camera.rotation.T
    cx, cy, cz = (float(v) for v in camera.center)
    atlas, stand_row, sky_row = _atlas(style, seed)
    # Each plane is a homography of the normalised coordinates: for a ray d = R^T (xn, yn, 1),
    # the ground point is C - (Cz / dz) d and the stand point C + ((Ys - Cy) / dy) d.
    to_ground = np.array([[-cz, 0.0, cx], [0.0, -cz, cy], [0.0, 0.0, 1.0]])
    ground_tex = np.array(
        [
            [_TEX_PX_PER_M, 0.0, -_TEX_X[0] * _TEX_PX_PER_M],
            [0.0, _TEX_PX_PER_M, -_TEX_Y[0] * _TEX_PX_PER_M],
            [0.0, 0.0, 1.0],
        ]
    )
    depth = STAND_Y_M - cy
    to_stand = np.array([[depth, cx, 0.0], [0.0, cz, depth], [0.0, 1.0, 0.0]])
    stand_tex = np.array(
        [
            [_STAND_PX_PER_M, 0.0, -_STAND_X[0] * _STAND_PX_PER_M],
            [0.0, -_STAND_PX_PER_M, stand_row + STAND_HEIGHT_M * _STAND_PX_PER_M],
            [0.0, 0.0, 1.0],
        ]
    )
    ground_uv = cv2.perspectiveTransform(normalised, ground_tex @ to_ground @ rotation_t)
    stand_uv = cv2.perspectiveTransform(normalised, stand_tex @ to_stand @ rotation_t)
    # World direction of each ray (y and z components only): R^T @ (xn, yn, 1).
    rays = cv2.transform(normalised, rotation_t[1:])
    dy, dz = rays[..., 0], rays[..., 1]
    horizon_v = (STAND_Y_M - _TEX_Y[0]) * _TEX_PX_PER_M
    on_ground = (dz < 0) & (ground_uv[..., 1] <= horizon_v)
    stand_v = stand_uv[..., 1]
    on_stand = (
        ~on_ground
        & (dy > 0)
        & (stand_v >= stand_row)
        & (stand_v <= stand_row + STAND_HEIGHT_M * _STAND_PX_PER_M)
    )
    # Sky: a gradient with the ray's elevation, read from the atlas's sky row.
    sky_uv = np.empty_like(ground_uv)
    xn, yn = normalised[..., 0], normalised[..., 1]
    # |R^T v| = |v|: the ray's length is that of (xn, yn, 1).
    sky_uv[..., 0] = np.clip(dz / np.sqrt(1.0 + xn * xn + yn * yn), 0.0, 1.0) * 255.0
    sky_uv[..., 1] = sky_row
    uv = np.where(on_ground[..., None], ground_uv, np.where(on_stand[..., None], stand_uv, sky_uv))
    map_x, map_y = np.ascontiguousarray(uv[..., 0]), np.ascontiguousarray(uv[..., 1])
    sampled = cv2.remap(atlas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    image = cv2.resize(sampled, (width, height), interpolation=cv2.INTER_AREA).astype(
        np.uint8, copy=False
    )
    _draw_goals(image, camera)
    if style.blur_sigma_px > 0:
        # A lens is never perfectly sharp; perfectly crisp edges would look synthetic.
        image = cv2.GaussianBlur(image, (0, 0), style.blur_sigma_px).astype(np.uint8, copy=False)
    if style.vignette > 0:
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        r2 = ((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2
        gain = (1.0 - style.vignette * r2 / 2)[..., None]
        image = cv2.convertScaleAbs(image.astype(np.float32) * gain).astype(np.uint8, copy=False)
    return np.ascontiguousarray(image, dtype=np.uint8)
