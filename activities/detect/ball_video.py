"""Ball candidates on panorama video: small bright blobs and small moving blobs, frame by frame.

A 22-cm ball is 2 to 8 pixels across in a panorama; a COCO detector finds under a third of them.
Two cheap cues find most of the rest, and the track stage's ball tracker (which sees the whole
match) picks the match ball among them:

- **appearance**: a white top-hat of the luminance (the image minus its morphological opening)
  keeps bright structures narrower than the structuring element -- a ball, but not the grass or a
  player's body; its connected components of about the ball's expected size are candidates;
- **motion**: static cameras make a background model meaningful; small foreground components
  of OpenCV's MOG2 subtractor (on the luminance) are candidates too (a kicked ball is blurred
  into a streak and loses its top-hat contrast, but it moves).

Each candidate's box is sized like the ball the rig predicts at that point (``diameter_px``),
so boxes are comparable across the image and with the detector's. Candidates are scored from
their contrast, their size against the expected one, and their motion, and only the best
``max_per_frame`` of a frame are kept: the tracker's work and the stored rows stay bounded
whatever the clutter.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from activities.stitch.panorama import PanoramaModel, panorama_to_pitch, pitch_polygon
from polyvision.geometry.pitch import BALL_RADIUS_M

Float32Array = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]

BALL_DIAMETER_M = 2 * BALL_RADIUS_M


@dataclass(frozen=True)
class VideoBallSettings:
    """Knobs of the video candidates (defaults measured on the synthetic seeds).

    Attributes:
        tophat_min: Least top-hat contrast (luminance levels) of a bright candidate.
        motion_history: Frames the MOG2 background model remembers.
        motion_threshold: MOG2's squared Mahalanobis distance for a foreground pixel.
        size_range: Candidate component diameters kept, as multiples of the expected diameter.
        min_diameter_px: Floor of the expected diameter (a far ball is still a few pixels).
        max_per_frame: Best candidates kept per frame.
    """

    tophat_min: float = 25.0
    motion_history: int = 250
    motion_threshold: float = 25.0
    size_range: tuple[float, float] = (0.25, 2.5)
    min_diameter_px: float = 2.0
    max_per_frame: int = 40


@dataclass(frozen=True)
class BallCandidatesFrame:
    """One frame's ball candidates.

    Attributes:
        xyxy: ``[N, 4]`` boxes of the expected ball size around each candidate, pixels.
        score: ``[N]`` 0..1, higher is more ball-like.
        moving: ``[N]`` the candidate overlaps the foreground of the background model.
    """

    xyxy: Float32Array
    score: Float32Array
    moving: npt.NDArray[np.bool_]

    @staticmethod
    def empty() -> BallCandidatesFrame:
        return BallCandidatesFrame(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.bool_)
        )

    def __len__(self) -> int:
        return int(self.score.shape[0])


def ball_diameter_map(model: PanoramaModel, step: int = 8) -> Float32Array:
    """Expected diameter in pixels of a ball on the grass at every panorama pixel.

    The panorama's scale is ``focal_px`` pixels per radian, so a ball at distance ``d`` spans
    ``focal_px * 0.22 / d`` pixels. Pixels whose ray never meets the grass (above the horizon)
    get the diameter at the far edge of the pitch region's farthest row. Computed on a grid every
    ``step`` pixels and resized: the scale changes slowly across the image.
    """
    cols = np.arange(0, model.width + step, step, dtype=np.float64)
    rows = np.arange(0, model.height + step, step, dtype=np.float64)
    uu, vv = np.meshgrid(cols, rows)
    ground = panorama_to_pitch(model, np.column_stack([uu.ravel(), vv.ravel()]), BALL_RADIUS_M)
    centre = np.asarray(model.center)
    dist = np.sqrt(
        (ground[:, 0] - centre[0]) ** 2
        + (ground[:, 1] - centre[1]) ** 2
        + (centre[2] - BALL_RADIUS_M) ** 2
    )
    diameter = (model.focal_px * BALL_DIAMETER_M / dist).reshape(uu.shape)
    finite = np.isfinite(diameter)
    floor = float(diameter[finite].min()) if finite.any() else 2.0
    diameter = np.where(finite, diameter, floor).astype(np.float32)
    resized = cv2.resize(diameter, (model.width, model.height), interpolation=cv2.INTER_LINEAR)
    return np.asarray(resized, np.float32)


class VideoBallCandidates:
    """Stateful per-video candidate finder: feed it the frames of one video in order.

    With a mask, the work is done on the mask's bounding box grown by :data:`CROP_PAD` pixels
    (the sky, the stands and the trees above a far touchline are a quarter of a panorama):
    every value a candidate inside the mask depends on lies within that pad, so the candidates
    are the same as on the whole frame.

    Args:
        diameter_px: ``[H, W]`` expected ball diameter per pixel (`ball_diameter_map`), or a
            single value for every pixel.
        mask: ``[H, W]`` uint8, non-zero where candidates may be (the pitch and its margin);
            None: everywhere.
        settings: The knobs.
    """

    def __init__(
        self,
        diameter_px: Float32Array | float,
        mask: UInt8Array | None = None,
        settings: VideoBallSettings | None = None,
    ) -> None:
        self._settings = settings or VideoBallSettings()
        self._diameter = diameter_px
        self._mask = mask
        s = self._settings
        self._mog = cv2.createBackgroundSubtractorMOG2(
            history=s.motion_history, varThreshold=s.motion_threshold, detectShadows=False
        )
        self._kernel: UInt8Array | None = None
        self._crop: tuple[slice, slice] | None = None
        self._origin = (0, 0)

    def _tophat_kernel(self) -> UInt8Array:
        if self._kernel is None:
            d = self._diameter
            largest = float(np.max(d)) if isinstance(d, np.ndarray) else float(d)
            size = int(np.clip(2 * np.ceil(largest) + 3, 7, 41)) | 1
            # A square, not a disc: OpenCV opens with a rectangle in two separable passes, about
            # ten times faster; a ball (and any blob narrower than the kernel) is removed by
            # either, so its contrast is the same (88 % of a real panorama's candidates agree).
            self._kernel = np.ones((size, size), np.uint8)
        return self._kernel

    def _window(self, height: int, width: int) -> tuple[slice, slice]:
        """The rows and columns worked on: the mask's bounding box and a pad, on a 4-px grid
        (candidates are thinned per 4-px cell, which must not move)."""
        if self._crop is None:
            rows = cols = np.zeros(0, np.intp)
            if self._mask is not None:
                rows = np.flatnonzero(self._mask.any(axis=1))
                cols = np.flatnonzero(self._mask.any(axis=0))
            if len(rows) == 0:
                self._crop = (slice(0, height), slice(0, width))
            else:
                y0 = max(0, (int(rows[0]) - CROP_PAD) // 4 * 4)
                x0 = max(0, (int(cols[0]) - CROP_PAD) // 4 * 4)
                y1 = min(height, int(rows[-1]) + 1 + CROP_PAD)
                x1 = min(width, int(cols[-1]) + 1 + CROP_PAD)
                self._crop = (slice(y0, y1), slice(x0, x1))
            self._origin = (self._crop[1].start, self._crop[0].start)
        return self._crop

    def __call__(self, image_bgr: UInt8Array) -> BallCandidatesFrame:
        """The candidates of the next frame (``[H, W, 3]`` uint8 BGR)."""
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise ValueError(f"expected an [H, W, 3] uint8 image, got {image_bgr.shape}")
        s = self._settings
        full_height, full_width = image_bgr.shape[:2]
        rows, cols = self._window(full_height, full_width)
        x0, y0 = self._origin
        image = image_bgr[rows, cols]
        height, width = image.shape[:2]
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        # On the luminance: a ball is bright on green, and one channel costs a third as much.
        foreground = self._mog.apply(gray)
        tophat = np.asarray(
            cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, self._tophat_kernel()), np.uint8
        )
        # Moving blobs are the foreground's small components (not players or their shadows).
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(
            (foreground > 0).astype(np.uint8), connectivity=8
        )
        small = np.zeros(count, np.bool_)
        small[1:] = stats[1:, cv2.CC_STAT_AREA] <= MAX_MOVING_AREA
        motion_centres = np.asarray(centroids, np.float64)[small]
        # Peaks, not components: a ball touching a line or a sock is one component with them.
        peaks = (tophat >= s.tophat_min) & (tophat == cv2.dilate(tophat, np.ones((5, 5), np.uint8)))
        iy, ix = np.nonzero(peaks)
        ix = np.concatenate([ix, np.round(motion_centres[:, 0]).astype(np.intp)])
        iy = np.concatenate([iy, np.round(motion_centres[:, 1]).astype(np.intp)])
        ix, iy = np.clip(ix, 0, width - 1), np.clip(iy, 0, height - 1)
        if self._mask is not None:
            keep = self._mask[iy + y0, ix + x0] > 0
            ix, iy = ix[keep], iy[keep]
        if len(ix) == 0:
            return BallCandidatesFrame.empty()
        d = self._diameter
        expected = d[iy + y0, ix + x0] if isinstance(d, np.ndarray) else np.full(len(ix), float(d))
        expected = np.maximum(expected.astype(np.float32), s.min_diameter_px)
        centres = np.column_stack([ix + x0, iy + y0]).astype(np.float64)
        # The 3x3 maximum: centroids fall between pixels, and a one-pixel diagonal line must
        # not slip between the ring's samples.
        spread = np.asarray(cv2.dilate(tophat, np.ones((3, 3), np.uint8)), np.uint8)
        contrast = spread[iy, ix].astype(np.float32)
        ring = _ring_max(spread, ix, iy, np.maximum(1.5 * expected, 3.0)).astype(np.float32)
        in_motion = _near_label(np.asarray(labels, np.int32), small, ix, iy)
        score = _score(contrast, ring, in_motion)
        order = np.argsort(-score, kind="stable")
        # One candidate per 4-pixel cell: a plateau's peaks and a blob's motion centroid are one.
        gx, gy = ix[order] + x0, iy[order] + y0
        cell = (gy // 4) * (full_width // 4 + 1) + gx // 4
        _, first = np.unique(cell, return_index=True)
        order = order[np.sort(first)][: s.max_per_frame]
        half = expected[order, None] / 2.0
        xy = centres[order]
        xyxy = np.concatenate([xy - half, xy + half], axis=1).astype(np.float32)
        return BallCandidatesFrame(xyxy, score[order], in_motion[order])


MAX_MOVING_AREA = 400
"""Largest foreground component (pixels) that can be a ball; larger ones are players, shadows."""

CROP_PAD = 96
"""Pixels around the mask's bounding box worked on as well: the top-hat's opening reaches 40
(twice the largest kernel's radius), the isolation ring 37 more, the peak test 3."""


def _near_label(
    labels: npt.NDArray[np.int32],
    wanted: npt.NDArray[np.bool_],
    ix: npt.NDArray[np.intp],
    iy: npt.NDArray[np.intp],
) -> npt.NDArray[np.bool_]:
    """Whether a wanted component's pixel is in each point's 3x3 neighbourhood (centroids fall
    between pixels)."""
    height, width = labels.shape
    near = np.zeros(len(ix), np.bool_)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            y = np.clip(iy + dy, 0, height - 1)
            x = np.clip(ix + dx, 0, width - 1)
            near |= wanted[labels[y, x]]
    return near


def _ring_max(
    image: UInt8Array, ix: npt.NDArray[np.intp], iy: npt.NDArray[np.intp], radius: Float32Array
) -> UInt8Array:
    """The largest value on a circle of ``radius`` around each point.

    A ball is an isolated spot: the circle around it sees grass. A line, a shirt or a row of
    advertising boards is not: the circle crosses it.
    """
    height, width = image.shape[:2]
    angles = np.linspace(0.0, 2.0 * np.pi, 16, endpoint=False)
    xs = np.clip(np.round(ix[:, None] + radius[:, None] * np.cos(angles)), 0, width - 1)
    ys = np.clip(np.round(iy[:, None] + radius[:, None] * np.sin(angles)), 0, height - 1)
    return np.asarray(image[ys.astype(np.intp), xs.astype(np.intp)].max(axis=1), np.uint8)


def _score(
    contrast: Float32Array, ring: Float32Array, moving: npt.NDArray[np.bool_]
) -> Float32Array:
    """0..1: bright, isolated and moving reads as a ball."""
    bright = np.clip((contrast - 20.0) / 60.0, 0.0, 1.0)
    isolated = np.clip(1.0 - ring / np.maximum(contrast, 1.0), 0.0, 1.0)
    score = 0.1 + 0.3 * bright * isolated + 0.3 * isolated + 0.3 * moving * isolated
    return np.asarray(score, np.float32)


def off_people(
    candidates: BallCandidatesFrame, people_xyxy: Float32Array, feet_fraction: float = 0.2
) -> BallCandidatesFrame:
    """The candidates that are not on a person's head, shirt or shorts.

    Heads, white shirts and numbers are the brightest small spots on a pitch and they move like
    a ball; the ball itself is on the grass, at a player's feet at most. So a candidate whose
    centre falls in a person box above its bottom ``feet_fraction`` is dropped.
    """
    if len(candidates) == 0 or len(people_xyxy) == 0:
        return candidates
    cx = (candidates.xyxy[:, 0] + candidates.xyxy[:, 2]) / 2
    cy = (candidates.xyxy[:, 1] + candidates.xyxy[:, 3]) / 2
    p = np.asarray(people_xyxy, np.float32).reshape(-1, 4)
    feet_line = p[:, 3] - feet_fraction * (p[:, 3] - p[:, 1])
    on_body = (
        (cx[:, None] >= p[None, :, 0])
        & (cx[:, None] <= p[None, :, 2])
        & (cy[:, None] >= p[None, :, 1])
        & (cy[:, None] < feet_line[None, :])
    ).any(axis=1)
    keep = ~on_body
    return BallCandidatesFrame(
        candidates.xyxy[keep], candidates.score[keep], candidates.moving[keep]
    )


def with_network_balls(
    candidates: BallCandidatesFrame,
    network_xyxy: Float32Array,
    network_score: Float32Array,
    diameter_px: Float32Array | float,
    max_per_frame: int,
) -> BallCandidatesFrame:
    """The candidates with the detector's ball boxes added (a near duplicate keeps the better).

    The network sees texture the top-hat does not (a ball on a white line, a blurred one); its
    boxes are re-sized to the expected ball size so every candidate's box means the same thing.
    """
    if len(network_xyxy) == 0 or max_per_frame <= 0:
        return candidates
    net = np.asarray(network_xyxy, np.float32).reshape(-1, 4)
    centres = np.column_stack([(net[:, 0] + net[:, 2]) / 2, (net[:, 1] + net[:, 3]) / 2])
    if isinstance(diameter_px, np.ndarray):
        h, w = diameter_px.shape
        iy = np.clip(np.round(centres[:, 1]).astype(np.intp), 0, h - 1)
        ix = np.clip(np.round(centres[:, 0]).astype(np.intp), 0, w - 1)
        expected = np.maximum(diameter_px[iy, ix], 2.0)
    else:
        expected = np.full(len(net), max(float(diameter_px), 2.0), np.float32)
    # The network's score is calibrated lower than ours for tiny balls: a found ball is good
    # evidence, so it starts at 0.6 whatever its score.
    score = np.maximum(np.asarray(network_score, np.float32), 0.6)
    xyxy = np.concatenate(
        [centres - expected[:, None] / 2, centres + expected[:, None] / 2], axis=1
    )
    merged_xyxy = np.concatenate([candidates.xyxy, xyxy.astype(np.float32)])
    merged_score = np.concatenate([candidates.score, score.astype(np.float32)])
    moving = np.concatenate([candidates.moving, np.zeros(len(net), np.bool_)])
    order = np.argsort(-merged_score, kind="stable")
    cx = (merged_xyxy[order, 0] + merged_xyxy[order, 2]) / 2
    cy = (merged_xyxy[order, 1] + merged_xyxy[order, 3]) / 2
    keep: list[int] = []
    for k in range(len(order)):
        if all(np.hypot(cx[k] - cx[j], cy[k] - cy[j]) > 3.0 for j in keep):
            keep.append(k)
        if len(keep) == max_per_frame:
            break
    chosen = order[np.asarray(keep, np.intp)]
    return BallCandidatesFrame(merged_xyxy[chosen], merged_score[chosen], moving[chosen])


class BallFinder:
    """The detect stage's ball candidates of one panorama video, frame after frame.

    Composes the video cues (`VideoBallCandidates`), the detector's own ball boxes
    (`with_network_balls`) and the people found in the same frame (`off_people`).
    """

    def __init__(
        self,
        diameter_px: Float32Array | float,
        mask: UInt8Array | None = None,
        settings: VideoBallSettings | None = None,
    ) -> None:
        self._settings = settings or VideoBallSettings()
        self._diameter = diameter_px
        self._video = VideoBallCandidates(diameter_px, mask, self._settings)

    def skip(self, image_bgr: UInt8Array) -> None:
        """Feed a frame whose rows are already known (a resumed chunk): the motion model needs
        every frame to be where an uninterrupted run would be."""
        self._video(image_bgr)

    def __call__(
        self,
        image_bgr: UInt8Array,
        people_xyxy: Float32Array,
        network_xyxy: Float32Array,
        network_score: Float32Array,
    ) -> BallCandidatesFrame:
        found = with_network_balls(
            self._video(image_bgr),
            network_xyxy,
            network_score,
            self._diameter,
            self._settings.max_per_frame,
        )
        return off_people(found, people_xyxy)


def pitch_mask(model: PanoramaModel, margin_m: float) -> UInt8Array:
    """``[H, W]`` uint8: 1 on the pitch grown by ``margin_m`` (where the match ball can be seen,
    lofted balls' grass points included), 0 elsewhere."""
    mask = np.zeros((model.height, model.width), np.uint8)
    polygon = np.round(np.asarray(pitch_polygon(model, margin_m))).astype(np.int32)
    cv2.fillPoly(mask, [polygon], 1)
    return mask
