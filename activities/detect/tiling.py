"""Tiled detection for small players: plan overlapping tiles, detect per tile, merge at borders.

Why tiles: a whole 3072x1728 frame letterboxed into a 416 input shrinks a 40-px far player to
5 px and the detector finds almost nobody (6 people on frame 0 of the SoccerTrack left camera);
416-px tiles at native resolution find about 40.

Why a region of interest: detection dominates the pipeline's cost and a static camera sees a
lot of sky, trees and stands. :func:`plan_tiles` drops tiles that do not touch the pitch area
(optionally grown by a margin, so a player standing on the far touchline keeps his head).

How duplicates are merged (:func:`merge_tiled`), in this order, per class:

1. **Cut boxes give way to complete ones.** A box touching an *inner* border of its tile (one
   that is not an image edge) is probably a fragment of an object the tile cut. If a box from
   another tile that is not cut covers most of it (intersection over the fragment's own area
   at least ``containment``), the fragment is dropped. Plain NMS would not do this reliably: a
   fragment (say, a player's upper half) has a low IoU with the complete box, so it would
   survive as a second, wrong detection.
2. **Fragments of an object wider than the overlap are joined.** Objects larger than the tile
   overlap (near players, close to the camera) are cut in *every* tile. Remaining cut boxes
   from different tiles that overlap each other by intersection-over-min-area at least
   ``containment`` are replaced by their union (score = the best fragment's).
3. **Class-wise NMS** at ``nms_iou`` removes the ordinary duplicates: an object wholly inside
   the overlap band is detected complete by both tiles with nearly the same box.

We use IoU (NMS) rather than intersection-over-min-area for step 3 on purpose: in a pack of
players a partly occluded player's box lies largely inside his neighbour's, and an
IoMin merge would delete him. IoMin is used only where we *know* one box is a fragment.

Why upsampling (``upscale``): YOLOX-nano was trained on COCO, where few people are under
30 px tall; on a wide panorama far players are 10-25 px and the model misses most of those
under 15 px at native resolution. A tile can instead cover a window of ``tile / upscale``
source pixels and be resized to the model's ``tile`` input, so every figure in it is
``upscale`` times bigger. The cost is the number of tiles, which grows roughly with
``upscale**2``. On the SoccerTrack-v2 panoramas 1.5 pays best (``bench/detect_real.py``);
2 and more do worse than 1.5: the upsampled blur scores lower, and near players are cut by the
smaller windows. Each :class:`Tile` carries its own scale, so code that only passes tiles around
(``detect_tiled``, the detect rows) runs upsampled tiles unchanged, and tiles of different
scales (two plans concatenated, say) merge like any others.

Optionally, a downscaled whole-frame pass (``full_frame_pass=True``) adds the boxes of very
large objects (at least ``full_frame_min_size`` px on their longer side): a near player taller
than a tile is only ever seen in fragments by the tiles, while the whole frame, shrunk, shows
him whole. Its small boxes are discarded, since the shrunk frame is unreliable for small
objects and its boxes often span two neighbouring players. It is off by default: on the
SoccerTrack cameras every player fits within a tile, and it costs one more inference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from activities.detect.detections import Detections
from activities.detect.yolox import nms

__all__ = [
    "Detector",
    "Tile",
    "detect_tiled",
    "detect_tiles",
    "merge_tiled",
    "plan_tiles",
    "tile_positions",
    "window_size",
]

Roi = npt.NDArray[np.generic] | Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Tile:
    """A window of the image, in pixels: columns ``x .. x + w``, rows ``y .. y + h``.

    ``scale`` is how many model-input pixels one source pixel becomes: the window is resized to
    :attr:`input_size` before detection, so ``scale`` 2 shows the detector every figure twice
    as tall. It lives on the tile (not on the call) so that a plan can mix scales and code that
    only passes tiles along runs them as planned.
    """

    x: int
    y: int
    w: int
    h: int
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not (self.w > 0 and self.h > 0 and math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"a tile needs a positive size and scale, got {self}")

    @property
    def x2(self) -> int:
        """One past the last column."""
        return self.x + self.w

    @property
    def y2(self) -> int:
        """One past the last row."""
        return self.y + self.h

    @property
    def input_size(self) -> tuple[int, int]:
        """``(width, height)`` the window is resized to for the detector."""
        return max(1, round(self.w * self.scale)), max(1, round(self.h * self.scale))

    def crop(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """A view of ``image`` under this tile (no copy, not resized)."""
        return image[self.y : self.y2, self.x : self.x2]


class Detector(Protocol):
    """What :func:`detect_tiled` needs from a detector (e.g. ``YoloxDetector``)."""

    def detect(
        self, image_bgr: npt.NDArray[np.uint8], score_threshold: float = ..., nms_iou: float = ...
    ) -> Detections:
        """Detect in one image, boxes in that image's pixels."""
        ...


def tile_positions(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering ``[0, length)`` with at least ``overlap`` px shared.

    The fewest tiles that satisfy the overlap are spread evenly, the first at 0 and the last
    ending exactly at ``length`` (so no tile leaves the image and the spare overlap is shared
    out instead of piled onto the last pair).

    Args:
        length: image width or height.
        tile: tile size along that axis.
        overlap: minimum overlap between neighbours; must be smaller than ``tile``.

    Returns:
        Sorted offsets; ``[0]`` when the image is no longer than one tile.
    """
    if length <= 0 or tile <= 0:
        raise ValueError(f"length and tile must be positive, got {length} and {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got {overlap} for tile {tile}")
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    span = length - tile
    # Integer floor keeps every gap <= tile - overlap (the gaps' mean is span / (n - 1), which
    # is at most tile - overlap by the choice of n) and puts the last tile exactly at span.
    return [i * span // (n - 1) for i in range(n)]


def _roi_mask(roi: Roi, width: int, height: int) -> npt.NDArray[np.bool_]:
    arr = np.asarray(roi)
    # A mask is [height, width]; a polygon is [K, 2]. Only a 2-px-wide image is ambiguous,
    # and there a boolean dtype decides.
    if arr.dtype == np.bool_ or (arr.ndim == 2 and arr.shape == (height, width) and width != 2):
        if arr.shape != (height, width):
            raise ValueError(f"roi mask must have shape ({height}, {width}), got {arr.shape}")
        return arr.astype(bool)
    if arr.ndim == 2 and arr.shape[1] == 2 and arr.shape[0] >= 3:
        mask = np.zeros((height, width), np.uint8)
        # 4 fractional bits: polygons from a projected pitch are sub-pixel.
        pts = np.round(arr.astype(np.float64) * 16).astype(np.int32)
        cv2.fillPoly(mask, [pts.reshape(-1, 1, 2)], 1, lineType=cv2.LINE_8, shift=4)
        return mask.astype(bool)
    raise ValueError(
        f"roi must be a polygon [K>=3, 2] or a mask of shape ({height}, {width}), "
        f"got an array of shape {arr.shape}"
    )


def window_size(tile: int, upscale: float) -> int:
    """Source pixels a tile window spans so that, resized to ``tile``, it is ``upscale`` bigger.

    Rounded to whole pixels; the tile's own scale (``tile / window``) then absorbs the rounding,
    so the detector always gets exactly ``tile`` pixels.
    """
    if tile <= 0 or not (math.isfinite(upscale) and upscale > 0):
        raise ValueError(f"tile and upscale must be positive, got {tile} and {upscale}")
    return max(1, round(tile / upscale))


def plan_tiles(
    width: int,
    height: int,
    tile: int = 416,
    overlap: int = 96,
    roi: Roi | None = None,
    *,
    roi_margin: int = 0,
    upscale: float = 1.0,
) -> list[Tile]:
    """Overlapping tiles covering an image, minus those that miss the region of interest.

    Args:
        width: image width in pixels.
        height: image height in pixels.
        tile: the detector's input side: each tile is resized to ``tile`` pixels (at
            ``upscale`` 1 it is a native-resolution crop of that size). A window longer than
            the image is shrunk to it (and then fed smaller; the detector letterboxes it).
        overlap: minimum shared *source* pixels between neighbouring windows; make it at least
            the size of the objects that should be seen whole by some tile. Clamped below the
            window size.
        roi: where objects can be: a polygon ``[K, 2]`` of ``(x, y)`` image points (e.g. the
            pitch outline projected into the image) or a boolean mask ``[height, width]``;
            ``None`` keeps every tile.
        roi_margin: keep also tiles within this many pixels of the region (Chebyshev
            distance), e.g. a player's height, so a player standing on the far touchline
            whose head leaves the pitch polygon is not cut off.
        upscale: how much bigger the detector sees the image: each window spans
            ``tile / upscale`` source pixels (:func:`window_size`) and is resized to ``tile``.
            1 is native resolution; 2 shows a 12-px far player as 24 px, for about 4 times
            the tiles at the same overlap.

    Returns:
        Tiles in row-major order (top to bottom, left to right).
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    window = window_size(tile, upscale)
    scale = tile / window
    tw, th = min(window, width), min(window, height)
    xs = tile_positions(width, tw, min(overlap, tw - 1))
    ys = tile_positions(height, th, min(overlap, th - 1))
    tiles = [Tile(x, y, tw, th, scale) for y in ys for x in xs]
    if roi is None:
        return tiles
    return _touching_roi(tiles, _roi_mask(roi, width, height), roi_margin)


def _touching_roi(
    tiles: Sequence[Tile], mask: npt.NDArray[np.bool_], roi_margin: int
) -> list[Tile]:
    """The tiles that have a region pixel within ``roi_margin`` (Chebyshev) of them."""
    height, width = mask.shape
    # A summed-area table answers "any ROI pixel under this (grown) tile?" in O(1) per tile.
    sat = np.zeros((height + 1, width + 1), np.int64)
    sat[1:, 1:] = mask.cumsum(0, dtype=np.int64).cumsum(1)
    kept = []
    for t in tiles:
        x1, y1 = max(t.x - roi_margin, 0), max(t.y - roi_margin, 0)
        x2, y2 = min(t.x2 + roi_margin, width), min(t.y2 + roi_margin, height)
        if sat[y2, x2] - sat[y1, x2] - sat[y2, x1] + sat[y1, x1] > 0:
            kept.append(t)
    return kept


def _intersection(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Pairwise intersection areas ``[len(a), len(b)]`` of xyxy boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    return np.asarray(wh[..., 0] * wh[..., 1], dtype=np.float32)


def _area(xyxy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return ((xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])).astype(np.float32)


def _cut_flags(
    det: Detections, tile: Tile, width: int, height: int, edge_margin: float
) -> npt.NDArray[np.bool_]:
    """Which boxes (image coordinates) touch an inner border of ``tile``."""
    b = det.xyxy
    cut = np.zeros(len(det), bool)
    if tile.x > 0:
        cut |= b[:, 0] <= tile.x + edge_margin
    if tile.x2 < width:
        cut |= b[:, 2] >= tile.x2 - edge_margin
    if tile.y > 0:
        cut |= b[:, 1] <= tile.y + edge_margin
    if tile.y2 < height:
        cut |= b[:, 3] >= tile.y2 - edge_margin
    return cut


def _union_groups(pairs: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Connected components of a symmetric boolean adjacency matrix (tiny: fragments only)."""
    n = pairs.shape[0]
    label = np.arange(n)
    for i in range(n):
        for j in np.flatnonzero(pairs[i, i + 1 :]) + i + 1:
            a, b = label[i], label[j]
            if a != b:
                label[label == b] = a
    return label


def merge_tiled(
    per_tile: Sequence[tuple[Tile, Detections]],
    width: int,
    height: int,
    *,
    nms_iou: float = 0.45,
    containment: float = 0.6,
    edge_margin: float = 2.0,
    extra: Detections | None = None,
) -> Detections:
    """Merge per-tile detections (already in image coordinates) into one set.

    See the module docstring for the three steps and why.

    Args:
        per_tile: each tile with its detections, boxes in *image* pixels.
        width: image width (a tile border on the image edge is not an inner border).
        height: image height.
        nms_iou: IoU threshold of the final class-wise NMS.
        containment: share of a fragment's area that must lie inside a complete box from
            another tile for the fragment to be dropped; also the intersection-over-min-area
            at which two fragments from different tiles are joined.
        edge_margin: a box edge within this many pixels of an inner tile border counts as cut.
        extra: complete detections from elsewhere (the whole-frame pass), never "cut".

    Returns:
        The merged detections, highest score first.
    """
    parts: list[Detections] = []
    tile_ids: list[npt.NDArray[np.int64]] = []
    cuts: list[npt.NDArray[np.bool_]] = []
    for i, (tile, det) in enumerate(per_tile):
        parts.append(det)
        tile_ids.append(np.full(len(det), i, np.int64))
        cuts.append(_cut_flags(det, tile, width, height, edge_margin))
    if extra is not None and len(extra):
        parts.append(extra)
        tile_ids.append(np.full(len(extra), -1, np.int64))
        cuts.append(np.zeros(len(extra), bool))
    if not parts:
        return Detections.empty()
    dets = Detections.concat(parts)
    tile_id = np.concatenate(tile_ids)
    cut = np.concatenate(cuts)

    merged: list[Detections] = []
    for cls in np.unique(dets.class_id):
        sel = np.flatnonzero(dets.class_id == cls)
        whole = sel[~cut[sel]]
        frag = sel[cut[sel]]
        xyxy = dets.xyxy
        if len(whole):
            merged.append(dets.filter(whole))
        if not len(frag):
            continue
        # Step 1: a fragment mostly inside a complete box from another tile is that box's
        # object seen through a tile edge.
        if len(whole):
            inter = _intersection(xyxy[frag], xyxy[whole])
            covered = inter >= containment * np.maximum(_area(xyxy[frag]), 1e-6)[:, None]
            covered &= tile_id[frag][:, None] != tile_id[whole][None, :]
            frag = frag[~covered.any(axis=1)]
        if not len(frag):
            continue
        # Step 2: join what is left of objects every tile cut.
        fb = xyxy[frag]
        inter = _intersection(fb, fb)
        area = _area(fb)
        iomin = inter / np.maximum(np.minimum(area[:, None], area[None, :]), 1e-6)
        linked = (iomin >= containment) & (tile_id[frag][:, None] != tile_id[frag][None, :])
        groups = _union_groups(linked)
        for g in np.unique(groups):
            members = frag[groups == g]
            box = np.concatenate([xyxy[members, :2].min(0), xyxy[members, 2:].max(0)])
            merged.append(
                Detections(
                    xyxy=box[None],
                    score=dets.score[members].max(keepdims=True),
                    class_id=np.array([cls], np.int16),
                )
            )
    # Step 3: ordinary duplicates from the overlap bands.
    return nms(Detections.concat(merged), nms_iou)


def detect_tiles(
    detector: Detector,
    image: npt.NDArray[np.uint8],
    tiles: Sequence[Tile],
    *,
    score_threshold: float = 0.3,
    nms_iou: float = 0.45,
    interpolation: int = cv2.INTER_LINEAR,
) -> list[tuple[Tile, Detections]]:
    """Run the detector on every tile, each resized by its scale; boxes back in image pixels.

    This is :func:`detect_tiled` before the merge. It is public so that a benchmark can detect
    once at a low threshold and merge at many: the per-tile NMS is greedy, so filtering its
    output by ``score > t`` gives exactly what detecting at ``t`` would.

    Args:
        detector: e.g. a ``YoloxDetector``, called once per tile; or one with ``detect_many``
            (`activities.detect.inference`), given all the frame's tiles at once.
        image: ``[H, W, 3]`` uint8 BGR frame.
        tiles: from :func:`plan_tiles` for this image's size.
        score_threshold: per-detection minimum score.
        nms_iou: IoU of the per-tile NMS.
        interpolation: OpenCV resize filter for tiles whose scale is not 1.

    Returns:
        Each tile with its detections, boxes in image pixels (divided by the tile's exact
        resize factor per axis, then shifted by its origin).
    """
    height, width = image.shape[:2]
    crops: list[npt.NDArray[np.uint8]] = []
    for t in tiles:
        if t.x < 0 or t.y < 0 or t.x2 > width or t.y2 > height:
            raise ValueError(f"{t} leaves the {width}x{height} image")
        crop = t.crop(image)
        in_w, in_h = t.input_size
        if (in_w, in_h) != (t.w, t.h):
            resized = cv2.resize(crop, (in_w, in_h), interpolation=interpolation)
            crop = np.asarray(resized, dtype=np.uint8)  # no copy: types the OpenCV result
        crops.append(crop)
    many = getattr(detector, "detect_many", None)
    if many is not None:
        # A pool spreads the tiles over its sessions; a GPU session runs them as one batch.
        found: list[Detections] = many(crops, score_threshold=score_threshold, nms_iou=nms_iou)
    else:
        found = [
            detector.detect(c, score_threshold=score_threshold, nms_iou=nms_iou) for c in crops
        ]
    per_tile: list[tuple[Tile, Detections]] = []
    for t, det in zip(tiles, found, strict=True):
        in_w, in_h = t.input_size
        # The exact factors of the resize actually done, not t.scale: the sizes were rounded.
        factor = np.array([in_w / t.w, in_h / t.h, in_w / t.w, in_h / t.h], np.float64)
        offset = np.array([t.x, t.y, t.x, t.y], np.float64)
        xyxy = (det.xyxy.astype(np.float64) / factor + offset).astype(np.float32)
        per_tile.append((t, Detections(xyxy, det.score, det.class_id)))
    return per_tile


def detect_tiled(
    detector: Detector,
    image: npt.NDArray[np.uint8],
    tiles: Sequence[Tile],
    *,
    score_threshold: float = 0.3,
    nms_iou: float = 0.45,
    containment: float = 0.6,
    edge_margin: float = 2.0,
    full_frame_pass: bool = False,
    full_frame_min_size: float = 128.0,
    interpolation: int = cv2.INTER_LINEAR,
) -> Detections:
    """Detect in every tile (resized by its scale) and merge the results into image pixels.

    Args:
        detector: e.g. a ``YoloxDetector``; called once per tile (batching gains nothing on
            CPU ONNX Runtime).
        image: ``[H, W, 3]`` uint8 BGR frame.
        tiles: from :func:`plan_tiles` for this image's size; each tile's ``scale`` says how
            much it is enlarged (``plan_tiles(..., upscale=2)``), so the upscale is chosen
            where the tiles are planned, not here.
        score_threshold: per-detection minimum score.
        nms_iou: IoU of the per-tile and the final class-wise NMS.
        containment: see :func:`merge_tiled`.
        edge_margin: see :func:`merge_tiled`; in image pixels.
        full_frame_pass: also run the detector on the whole (downscaled) frame and keep its
            boxes of at least ``full_frame_min_size`` px (longer side), for objects too large
            for any tile.
        full_frame_min_size: see ``full_frame_pass``.
        interpolation: OpenCV resize filter for upscaled tiles (see :func:`detect_tiles`).

    Returns:
        Detections in image pixels, highest score first.
    """
    height, width = image.shape[:2]
    per_tile = detect_tiles(
        detector,
        image,
        tiles,
        score_threshold=score_threshold,
        nms_iou=nms_iou,
        interpolation=interpolation,
    )
    extra = None
    if full_frame_pass:
        whole = detector.detect(image, score_threshold=score_threshold, nms_iou=nms_iou)
        size = np.maximum(whole.xyxy[:, 2] - whole.xyxy[:, 0], whole.xyxy[:, 3] - whole.xyxy[:, 1])
        extra = whole.filter(size >= full_frame_min_size)
    return merge_tiled(
        per_tile,
        width,
        height,
        nms_iou=nms_iou,
        containment=containment,
        edge_margin=edge_margin,
        extra=extra,
    )
