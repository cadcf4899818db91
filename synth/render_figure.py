"""Articulated human figures for the synthetic match: 3D body keypoints and their drawing.

A player is 16 keypoints (head, neck, shoulders, elbows, hands, hips, knees, ankles, toes) placed
in the pitch frame from the agent's position, heading, stride phase, speed and height. The
renderer projects them through a camera and draws thick antialiased limbs and polygons between
them; the ground-truth box is the projected keypoints grown by each keypoint's drawing radius, so
it always contains what was drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Float64Array = npt.NDArray[np.float64]
UInt8Array = npt.NDArray[np.uint8]
BGR = tuple[int, int, int]

HEAD, NECK, SHOULDER_L, SHOULDER_R, ELBOW_L, ELBOW_R, HAND_L, HAND_R = range(8)
HIP_L, HIP_R, KNEE_L, KNEE_R, ANKLE_L, ANKLE_R, TOE_L, TOE_R = range(8, 16)
KEYPOINT_COUNT = 16

# Sizes for a 1.80 m person, metres; scaled with the agent's height.
_REFERENCE_HEIGHT_M = 1.80
HEAD_RADIUS_M = 0.115
_THIGH_M = 0.17
_SHIN_M = 0.12
_SHOE_M = 0.10
_UPPER_ARM_M = 0.10
_FOREARM_M = 0.085
_NECK_M = 0.11
_TORSO_EDGE_M = 0.07
# Drawing radius of each keypoint: half the thickest stroke ending there. The ground-truth box
# grows every projected keypoint by its radius, so it covers every drawn pixel.
KEYPOINT_RADIUS_M = np.array(
    [
        HEAD_RADIUS_M,
        _NECK_M / 2,
        max(_UPPER_ARM_M, _TORSO_EDGE_M) / 2,
        max(_UPPER_ARM_M, _TORSO_EDGE_M) / 2,
        _UPPER_ARM_M / 2,
        _UPPER_ARM_M / 2,
        _FOREARM_M / 2,
        _FOREARM_M / 2,
        max(_THIGH_M, _TORSO_EDGE_M) / 2,
        max(_THIGH_M, _TORSO_EDGE_M) / 2,
        _THIGH_M / 2,
        _THIGH_M / 2,
        max(_SHIN_M, _SHOE_M) / 2,
        max(_SHIN_M, _SHOE_M) / 2,
        _SHOE_M / 2,
        _SHOE_M / 2,
    ]
)
# Antialiasing reaches one pixel beyond a stroke's nominal edge.
AA_MARGIN_PX = 1.5


def body_keypoints(
    position: npt.ArrayLike,
    heading: npt.ArrayLike,
    stride_phase: npt.ArrayLike,
    speed: npt.ArrayLike,
    height: npt.ArrayLike,
) -> Float64Array:
    """3D keypoints of running (or standing) figures.

    Args:
        position: ``[P, 3]`` feet position on the ground (``z`` is ignored: feet touch ``z=0``).
        heading: ``[P]`` facing direction, radians (0 = +x).
        stride_phase: ``[P]`` leg-cycle phase, radians.
        speed: ``[P]`` ground speed, m/s; sets the stride's amplitude.
        height: ``[P]`` standing height, metres.

    Returns:
        ``[P, 16, 3]`` keypoints in the pitch frame, indexed by the module's constants.
    """
    pos = np.asarray(position, np.float64).reshape(-1, 3)
    theta = np.asarray(heading, np.float64).reshape(-1)
    phase = np.asarray(stride_phase, np.float64).reshape(-1)
    h = np.asarray(height, np.float64).reshape(-1)[:, None]
    count = len(pos)
    forward = np.stack([np.cos(theta), np.sin(theta), np.zeros(count)], axis=1)
    left = np.stack([-np.sin(theta), np.cos(theta), np.zeros(count)], axis=1)
    up = np.array([0.0, 0.0, 1.0])
    base = pos * np.array([1.0, 1.0, 0.0])

    amp = (np.clip(np.asarray(speed, np.float64).reshape(-1) / 6.5, 0.0, 1.0) * 0.6)[:, None]
    sin_p, cos_p = np.sin(phase)[:, None], np.cos(phase)[:, None]
    lean = amp * 0.25

    def direction(angle: Float64Array) -> Float64Array:
        """Unit vector in the body's sagittal plane, ``angle`` forward from straight down."""
        return np.asarray(np.sin(angle) * forward - np.cos(angle) * up)

    thigh, shin = 0.245 * h, 0.245 * h
    pelvis = base + up * (0.535 * h)
    points = np.zeros((count, KEYPOINT_COUNT, 3))
    for side, hip, knee, ankle, toe, sign in (
        (1.0, HIP_L, KNEE_L, ANKLE_L, TOE_L, 1.0),
        (-1.0, HIP_R, KNEE_R, ANKLE_R, TOE_R, -1.0),
    ):
        swing = amp * sin_p * sign
        # The leg moving forward bends its knee; the supporting leg stays nearly straight.
        flex = amp * 0.9 * (1.0 + sign * cos_p)
        points[:, hip] = pelvis + side * 0.06 * h * left
        points[:, knee] = points[:, hip] + thigh * direction(swing)
        points[:, ankle] = points[:, knee] + shin * direction(swing - flex)
        points[:, toe] = points[:, ankle] + 0.12 * h * forward - 0.03 * h * up
    # Keep the lowest ankle on the ground: the body dips when the legs are spread.
    lowest = np.minimum(points[:, ANKLE_L, 2], points[:, ANKLE_R, 2])[:, None]
    drop = lowest - 0.045 * h
    points[:, HIP_L : TOE_R + 1] -= drop[:, :, None] * up
    pelvis = pelvis - drop * up

    spine = np.sin(lean) * forward + np.cos(lean) * up
    chest = pelvis + 0.29 * h * spine
    points[:, NECK] = chest + 0.045 * h * spine
    points[:, HEAD] = points[:, NECK] + 0.068 * h * spine
    for side, shoulder, elbow, hand, sign in (
        (1.0, SHOULDER_L, ELBOW_L, HAND_L, 1.0),
        (-1.0, SHOULDER_R, ELBOW_R, HAND_R, -1.0),
    ):
        swing = -0.9 * amp * sin_p * sign  # arms swing against the leg on their side
        bend = 0.25 + amp * 1.6
        out = side * left
        points[:, shoulder] = chest + side * 0.11 * h * left
        points[:, elbow] = points[:, shoulder] + 0.17 * h * direction(swing) + 0.02 * h * out
        points[:, hand] = points[:, elbow] + 0.16 * h * direction(swing + bend) + 0.01 * h * out
    return points


@dataclass(frozen=True)
class Palette:
    """Colours of one figure in one camera (BGR, after that camera's exposure)."""

    shirt: BGR
    shirt_dark: BGR
    shorts: BGR
    shorts_dark: BGR
    socks: BGR
    socks_dark: BGR
    skin: BGR
    skin_dark: BGR
    hair: BGR
    shoes: BGR
    long_sleeves: bool


def _pt(p: Float64Array) -> tuple[int, int]:
    """cv2 fixed-point coordinates (``shift=4``) of a pixel position."""
    return (round(float(p[0]) * 16), round(float(p[1]) * 16))


def _lerp(a: Float64Array, b: Float64Array, t: float) -> Float64Array:
    return np.asarray(a + (b - a) * t)


def draw_figure(
    image: UInt8Array,
    px: Float64Array,
    scale: float,
    height_m: float,
    palette: Palette,
    near_left: bool,
    facing_camera: bool,
) -> None:
    """Draw one figure from its projected keypoints, far limbs first, shaded.

    Args:
        image: BGR image drawn into.
        px: ``[16, 2]`` projected keypoints.
        scale: Pixels per metre at the figure.
        height_m: The agent's height (limb thicknesses scale with it).
        palette: Colours in this camera.
        near_left: Whether the figure's left side faces the camera (drawn last, lit).
        facing_camera: Whether the figure faces the camera (face visible, hair on top only).
    """
    size = scale * height_m / _REFERENCE_HEIGHT_M
    aa = cv2.LINE_AA

    def width(metres: float) -> int:
        return max(1, round(metres * size))

    def seg(a: Float64Array, b: Float64Array, colour: BGR, metres: float) -> None:
        cv2.line(image, _pt(a), _pt(b), colour, width(metres), aa, 4)

    def arm(shoulder: int, elbow: int, hand: int, lit: bool) -> None:
        sleeve = palette.shirt if lit else palette.shirt_dark
        skin = palette.skin if lit else palette.skin_dark
        if palette.long_sleeves:
            seg(px[shoulder], px[elbow], sleeve, _UPPER_ARM_M)
            seg(px[elbow], px[hand], sleeve, _FOREARM_M)
        else:
            seg(px[shoulder], px[elbow], skin, _FOREARM_M)
            seg(px[elbow], px[hand], skin, _FOREARM_M)
            seg(px[shoulder], _lerp(px[shoulder], px[elbow], 0.5), sleeve, _UPPER_ARM_M)

    def leg(hip: int, knee: int, ankle: int, toe: int, lit: bool) -> None:
        skin = palette.skin if lit else palette.skin_dark
        shorts = palette.shorts if lit else palette.shorts_dark
        socks = palette.socks if lit else palette.socks_dark
        seg(px[hip], px[knee], skin, _THIGH_M * 0.85)
        seg(px[hip], _lerp(px[hip], px[knee], 0.45), shorts, _THIGH_M)
        seg(_lerp(px[knee], px[ankle], 0.2), px[ankle], socks, _SHIN_M)
        seg(px[ankle], px[toe], palette.shoes, _SHOE_M)

    far, near = ("r", "l") if near_left else ("l", "r")
    limbs = {
        "l": ((SHOULDER_L, ELBOW_L, HAND_L), (HIP_L, KNEE_L, ANKLE_L, TOE_L)),
        "r": ((SHOULDER_R, ELBOW_R, HAND_R), (HIP_R, KNEE_R, ANKLE_R, TOE_R)),
    }
    arm(*limbs[far][0], lit=False)
    leg(*limbs[far][1], lit=False)

    # Torso: lit half towards the camera-facing side, shaded half away from it.
    near_sh, far_sh = (SHOULDER_L, SHOULDER_R) if near_left else (SHOULDER_R, SHOULDER_L)
    near_hip, far_hip = (HIP_L, HIP_R) if near_left else (HIP_R, HIP_L)
    mid_sh = _lerp(px[SHOULDER_L], px[SHOULDER_R], 0.5)
    mid_hip = _lerp(px[HIP_L], px[HIP_R], 0.5)
    torso = np.array([_pt(px[near_sh]), _pt(px[far_sh]), _pt(px[far_hip]), _pt(px[near_hip])])
    cv2.fillPoly(image, [torso], palette.shirt, aa, 4)
    cv2.polylines(image, [torso], True, palette.shirt, width(_TORSO_EDGE_M), aa, 4)
    dark = np.array([_pt(mid_sh), _pt(px[far_sh]), _pt(px[far_hip]), _pt(mid_hip)])
    cv2.fillPoly(image, [dark], palette.shirt_dark, aa, 4)
    # Shorts: a band from the hips to the top of the thighs.
    knee_l = _lerp(px[HIP_L], px[KNEE_L], 0.3)
    knee_r = _lerp(px[HIP_R], px[KNEE_R], 0.3)
    shorts = np.array([_pt(px[HIP_L]), _pt(px[HIP_R]), _pt(knee_r), _pt(knee_l)])
    cv2.fillPoly(image, [shorts], palette.shorts, aa, 4)
    seg(px[HIP_L], px[HIP_R], palette.shorts, _TORSO_EDGE_M)

    leg(*limbs[near][1], lit=True)
    arm(*limbs[near][0], lit=True)

    seg(px[NECK], _lerp(px[NECK], px[HEAD], 0.6), palette.skin_dark, _NECK_M)
    radius = HEAD_RADIUS_M * size
    centre = _pt(px[HEAD])
    r16 = max(16, round(radius * 16))
    cv2.circle(image, centre, r16, palette.skin, -1, aa, 4)
    if radius >= 1.5:
        axes = (r16, max(16, round(radius * 16 * (0.55 if facing_camera else 0.95))))
        cv2.ellipse(image, centre, axes, 0.0, 180.0, 360.0, palette.hair, -1, aa, 4)
        if not facing_camera:
            # Seen from behind: hair covers most of the head.
            low = (r16, max(16, round(radius * 16 * 0.45)))
            cv2.ellipse(image, centre, low, 0.0, 0.0, 180.0, palette.hair, -1, aa, 4)
