"""Ball candidates from appearance alone: small, bright, round blobs of a ball's size.

Why: YOLOX-nano (COCO "sports ball") finds about a quarter of the balls on the real panoramas
(``bench/ball_real.py``): a far ball is a 3-5 px blob and a near one a ~10 px white dot on the
turf, far below the sizes COCO taught the network. Those blobs are easy to see with classic
filters, so this module proposes them and :mod:`activities.detect.ball_classifier` scores them
together with the network's own ball boxes.

How (:func:`appearance_candidates`):

1. **Channel.** The per-pixel minimum of B, G and R ("whiteness"): a white or pale ball is high
   in all three channels, turf is low in red and blue, so the ball stands out from the grass
   more than in grey (where bright green is nearly as bright as a shaded ball).
2. **Blob response at a few scales.** The smaller principal curvature of the Gaussian-smoothed
   channel (the smaller eigenvalue of minus the Hessian), scale-normalised by sigma squared, for
   blob diameters :data:`SEARCH_DIAMETERS`. A round bright blob curves down in every direction;
   a painted line or a letter stroke only across itself, so its smaller curvature is about 0:
   lines are rejected by the filter itself, not by a later shape test. Larger scales run on a
   2x or 4x reduced image (``cv2.pyrDown``), which keeps a full 2160x1080 panorama cheap.
3. **Local maxima** above :data:`MIN_RESPONSE` grey levels, deduplicated across scales (the
   strongest within a blob's radius wins) and gated by size: with ``diameter_px`` given (a
   number or a per-pixel map) only scales within :data:`SIZE_RATIO_RANGE` of it are kept. On
   these compressed panoramas a ball's visible blob is 1.5-3 times its physical size (blur and
   bloom around a bright object), hence the wide range. Without it the diameter is fitted from
   ``people_xyxy`` (:func:`diameter_from_people`), else every scale is searched.
4. **Measurement.** Each maximum's blob is measured on the channel: background = median of a
   ring 1.25-1.8 search diameters out; the connected pixels above half the contrast give the
   centre (weighted) and the half-maximum extent; the box is :data:`BOX_SCALE` times that
   extent, capped at the extent down to :data:`EDGE_FRACTION` of the contrast plus
   :data:`EDGE_PAD` (so boxes are sized like the ball, as the tight labels are, not like the
   search window). The features the classifier uses (:data:`FEATURE_NAMES`) are read off at
   the same time; ``density`` (other candidates nearby) once all are known.
5. **People.** A bright dot in the upper part of a person box is a head, a white shirt or a
   number, not a ball: its ``in_person_top`` feature is 1 and the classifier (and the
   hand-set prior of the score) penalise it; the lower part of the box, where the ball is at a
   player's feet, is left alone.

The per-candidate ``score`` here is a hand-set prior (contrast and roundness squashed to 0..1);
:func:`activities.detect.ball_classifier.classify_balls` replaces it with the trained one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

__all__ = [
    "BOX_SCALE",
    "EDGE_FRACTION",
    "EDGE_PAD",
    "FEATURE_NAMES",
    "MIN_RESPONSE",
    "SEARCH_DIAMETERS",
    "SIZE_RATIO_RANGE",
    "BallCandidates",
    "Diameter",
    "appearance_candidates",
    "diameter_from_people",
    "expected_diameter_at",
    "local_density",
    "measure_candidates_at",
]

SEARCH_DIAMETERS: tuple[float, ...] = (3.0, 4.2, 6.0, 8.5, 12.0, 17.0)
"""Blob diameters searched, px; a geometric series (ratio ~1.41) from a far ball to a near one."""

MIN_RESPONSE = 4.0
"""Smallest scale-normalised curvature (grey levels) of a candidate: below it, sensor noise."""

SIZE_RATIO_RANGE = (0.8, 4.0)
"""Visible blob diameter over the expected physical diameter that a candidate may have."""

BALL_TO_PERSON = 0.22 / 1.8
"""A ball's diameter over a standing adult's height (22 cm over 1.8 m)."""

PERSON_TOP_FRACTION = 0.7
"""The part of a person box, from its top, where a bright dot is a head or a shirt."""

BOX_SCALE = 2.0
"""Output box side over the blob's half-maximum extent. On these blurred, compressed images
the half maximum lies well inside the ball's edge: on the labelled SoccerTrack-v2 balls the
label's side over the measured half-maximum extent has a median of 2.0 (quartiles 1.6-2.5),
and 2.0 gives the most matches at IoU 0.3 and 0.5 of the factors 1.6-2.8."""

EDGE_FRACTION = 0.2
"""Where a blob's edge is taken to be, as a fraction of its contrast (for the box's cap)."""

EDGE_PAD = 3.0
"""A box is at most the blob's extent down to :data:`EDGE_FRACTION` plus this, px. For a sharp
disc (a drawn ball, a crisp frame) twice the half maximum would be twice the ball; this caps
it near the disc, and leaves the blurred panoramas' boxes as they were (same matches)."""

MIN_BOX = 3.0
"""Smallest box side, px (a far ball is 3-5 px)."""

MAX_CANDIDATES = 400
"""At most this many candidates per image, the strongest; bounds the measuring cost."""

FEATURE_NAMES: tuple[str, ...] = (
    "log_response",  # log1p of the scale-normalised smaller curvature
    "roundness",  # smaller / larger curvature: 1 for a disc, 0 for a line
    "log_contrast",  # log1p of the peak minus the ring's median, whiteness channel
    "peak",  # the blob's peak whiteness / 255
    "ring_spread",  # the ring's inter-quartile range / contrast: clutter around the blob
    "ring_bright",  # fraction of the ring brighter than half the peak's contrast: lines, letters
    "saturation",  # colour saturation at the centre, 0..1: balls are pale
    "green_excess",  # G - (R + B) / 2 at the centre / 255: turf showing through
    "log_size_ratio",  # log of the measured blob diameter over the expected physical one
    "aspect",  # the blob box's shorter over longer side
    "fill",  # blob pixels over the box's area (a disc fills ~0.78)
    "in_person_top",  # 1 inside the upper part of a person box
    "ring_green",  # the ring's mean G - (R + B) / 2 / 255: turf around the ball, not stands
    "shadow",  # (background - the ring's darkest lower sample) / contrast: the ball's shadow
    "plateau",  # fraction of the blob above 0.85 of its peak: a shaded sphere peaks, paint is flat
    "profile_half",  # mean at half a diameter from the centre, over the contrast: the fall-off
    "profile_one",  # the same at one diameter
    "density",  # log1p of the other candidates within 4 diameters: clutter (letters, stands)
    "net_score",  # the network's ball score here (0: none); set by the merge
    "from_network",  # 1 when the candidate is a network box without a blob of its own
)

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class BallCandidates:
    """Possible balls in one image, sized like the ball.

    Attributes:
        xyxy: float32 ``[N, 4]`` boxes, ``x1, y1, x2, y2`` pixels, around the blob itself.
        score: float32 ``[N]`` in ``0..1``; the appearance prior here, the classifier's
            probability after :func:`~activities.detect.ball_classifier.classify_balls`.
        features: float32 ``[N, len(FEATURE_NAMES)]``, columns in :data:`FEATURE_NAMES` order.
    """

    xyxy: FloatArray
    score: FloatArray
    features: FloatArray = field(repr=False)

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if np.shape(self.xyxy) != (n, 4) or np.shape(self.score) != (n,):
            raise ValueError(
                f"xyxy must be [N, 4] and score [N], got {np.shape(self.xyxy)}, "
                f"{np.shape(self.score)}"
            )
        if np.shape(self.features) != (n, len(FEATURE_NAMES)):
            raise ValueError(f"features must be [{n}, {len(FEATURE_NAMES)}]")

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    @classmethod
    def empty(cls) -> BallCandidates:
        """No candidates."""
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, len(FEATURE_NAMES)), np.float32),
        )

    def select(self, mask: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> BallCandidates:
        """The candidates a boolean mask or an index array picks."""
        return BallCandidates(self.xyxy[mask], self.score[mask], self.features[mask])

    @property
    def centres(self) -> FloatArray:
        """``[N, 2]`` box centres."""
        return np.stack(
            [(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, (self.xyxy[:, 1] + self.xyxy[:, 3]) / 2], 1
        ).astype(np.float32)


Diameter = float | FloatArray | None
"""An expected physical ball diameter in px: one number, a float ``[H, W]`` map, or unknown."""


def _check_image(image_bgr: npt.NDArray[np.generic]) -> None:
    if not isinstance(image_bgr, np.ndarray) or image_bgr.dtype != np.uint8:
        raise ValueError(
            f"image_bgr must be a uint8 numpy array, got {getattr(image_bgr, 'dtype', None)}"
        )
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or min(image_bgr.shape[:2]) < 8:
        raise ValueError(f"image_bgr must be [H>=8, W>=8, 3] BGR, got {image_bgr.shape}")


def _check_diameter(diameter_px: Diameter, shape: tuple[int, int]) -> Diameter:
    if diameter_px is None:
        return None
    if isinstance(diameter_px, np.ndarray):
        if diameter_px.shape != shape:
            raise ValueError(
                f"a diameter map must have the image's shape {shape}, got {diameter_px.shape}"
            )
        if not np.issubdtype(diameter_px.dtype, np.floating):
            raise ValueError(f"a diameter map must be floating point, got {diameter_px.dtype}")
        return np.asarray(diameter_px, np.float32)
    value = float(diameter_px)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"diameter_px must be positive, got {diameter_px}")
    return value


def diameter_from_people(
    people_xyxy: npt.ArrayLike, min_people: int = 4
) -> tuple[float, float] | None:
    """Fit the expected ball diameter against the image row from person boxes.

    A ball is about :data:`BALL_TO_PERSON` of a standing person's height at the same distance,
    and on a static, level camera a person's height grows roughly linearly with the row of his
    feet. The line ``height = a + b * foot_row`` is fitted robustly (Theil-Sen: the median of
    pairwise slopes, then the median intercept) because crouching players, a fragment of a cut
    box or two players in one box are common.

    Args:
        people_xyxy: ``[N, 4]`` person boxes in the image.
        min_people: fewer boxes than this give no fit.

    Returns:
        ``(a, b)`` of ``diameter = a + b * row`` (already times the ball ratio), or None.
    """
    boxes = np.asarray(people_xyxy, np.float64).reshape(-1, 4)
    heights = boxes[:, 3] - boxes[:, 1]
    keep = heights > 4  # a few pixels are a fragment, not a person
    feet, heights = boxes[keep, 3], heights[keep]
    if len(feet) < min_people:
        return None
    if len(feet) > 200:  # pairwise slopes grow quadratically; a spread subset is enough
        order = np.argsort(feet)
        pick = order[np.linspace(0, len(order) - 1, 200).astype(int)]
        feet, heights = feet[pick], heights[pick]
    i, j = np.triu_indices(len(feet), 1)
    dy = feet[j] - feet[i]
    ok = np.abs(dy) > 5  # pairs on nearly the same row say nothing about the slope
    slope = float(np.median((heights[j] - heights[i])[ok] / dy[ok])) if ok.any() else 0.0
    slope = max(slope, 0.0)  # nearer (lower) is never smaller on a level camera
    intercept = float(np.median(heights - slope * feet))
    return intercept * BALL_TO_PERSON, slope * BALL_TO_PERSON


def expected_diameter_at(
    diameter: Diameter, fit: tuple[float, float] | None, x: FloatArray, y: FloatArray
) -> FloatArray:
    """The expected physical ball diameter at points ``(x, y)``; NaN where unknown."""
    if isinstance(diameter, np.ndarray):
        h, w = diameter.shape
        xi = np.clip(np.round(x).astype(np.intp), 0, w - 1)
        yi = np.clip(np.round(y).astype(np.intp), 0, h - 1)
        return np.asarray(diameter[yi, xi], np.float32)
    if diameter is not None:
        return np.full(len(x), diameter, np.float32)
    if fit is not None:
        # At least a pixel: a far row can extrapolate to nothing or below zero.
        return np.asarray(np.maximum(fit[0] + fit[1] * y, 1.0), np.float32)
    return np.full(len(x), np.nan, np.float32)


def _whiteness(image_bgr: npt.NDArray[np.uint8]) -> FloatArray:
    b, g, r = cv2.split(image_bgr)
    return np.asarray(cv2.min(cv2.min(b, g), r), np.float32)


def _maxima_at_scale(
    level_image: FloatArray, sigma: float, factor: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Local maxima of the smaller curvature at one scale.

    Returns x, y (full-resolution px), response (the smaller eigenvalue of minus the Hessian
    times sigma squared) and roundness (smaller over larger eigenvalue).

    Only the Laplacian is computed on the whole image (one filter); the full Hessian is read
    at its local minima alone. That is exact where it matters, since the smaller eigenvalue is
    at most half the trace, so a point failing the trace test fails the eigenvalue test too.
    """
    smooth = cv2.GaussianBlur(level_image, (0, 0), sigma)
    lap = cv2.Laplacian(smooth, cv2.CV_32F, ksize=1)  # hxx + hyy
    limit = -2.0 * MIN_RESPONSE / (sigma * sigma)
    minima = (lap <= cv2.erode(lap, np.ones((3, 3), np.uint8))) & (lap < limit)
    minima[[0, -1], :] = False  # the Hessian below reads one pixel around each point
    minima[:, [0, -1]] = False
    ys, xs = np.nonzero(minima)
    s = smooth
    centre = s[ys, xs]
    hxx = s[ys, xs - 1] + s[ys, xs + 1] - 2 * centre
    hyy = s[ys - 1, xs] + s[ys + 1, xs] - 2 * centre
    hxy = (s[ys + 1, xs + 1] - s[ys + 1, xs - 1] - s[ys - 1, xs + 1] + s[ys - 1, xs - 1]) / 4
    # Eigenvalues of minus the Hessian: -trace / 2 -+ sqrt(((hxx - hyy) / 2)^2 + hxy^2).
    half_trace = (hxx + hyy) * -0.5
    root = np.sqrt(((hxx - hyy) * 0.5) ** 2 + hxy * hxy)
    norm = sigma * sigma
    response = (half_trace - root) * norm
    large = (half_trace + root) * norm
    ok = response > MIN_RESPONSE
    xs, ys, response, large = xs[ok], ys[ok], response[ok], large[ok]
    roundness = response / np.maximum(large, 1e-6)
    # A level pixel covers factor x factor source pixels; its centre is at +(factor - 1) / 2.
    offset = (factor - 1) / 2
    return (
        (xs * factor + offset).astype(np.float32),
        (ys * factor + offset).astype(np.float32),
        response.astype(np.float32),
        roundness.astype(np.float32),
    )


def _raw_maxima(
    white: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Maxima at every search scale: x, y, response, roundness, scale diameter."""
    levels = [white]
    parts = []
    for diameter in SEARCH_DIAMETERS:
        sigma = diameter / (2 * math.sqrt(2))  # a disc of radius r peaks at sigma = r / sqrt 2
        # Reduce while the scale stays at least a level pixel (and at most 4x): far cheaper
        # (the cost is per pixel), and pyrDown's own smoothing is small against the scale's.
        level = min(math.floor(math.log2(sigma)), 2) if sigma >= 2.0 else 0
        while len(levels) <= level:
            levels.append(np.asarray(cv2.pyrDown(levels[-1]), np.float32))
        factor = 2**level
        xs, ys, response, roundness = _maxima_at_scale(levels[level], sigma / factor, factor)
        parts.append((xs, ys, response, roundness, np.full(len(xs), diameter, np.float32)))
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(5))  # type: ignore[return-value]


def _dedupe(
    x: FloatArray, y: FloatArray, response: FloatArray, diameter: FloatArray, limit: int
) -> npt.NDArray[np.intp]:
    """Greedy by response: drop a maximum within a blob radius of a stronger one kept."""
    order = np.argsort(-response, kind="stable")
    kept: list[int] = []
    kx = np.zeros(limit, np.float32)
    ky = np.zeros(limit, np.float32)
    kr = np.zeros(limit, np.float32)
    for i in order:
        n = len(kept)
        if n:
            reach = np.maximum(kr[:n], diameter[i] / 2)
            if np.any((kx[:n] - x[i]) ** 2 + (ky[:n] - y[i]) ** 2 < reach * reach):
                continue
        kx[n], ky[n], kr[n] = x[i], y[i], diameter[i] / 2
        kept.append(int(i))
        if len(kept) == limit:
            break
    return np.asarray(kept, np.intp)


_RING_ANGLES = np.linspace(0, 2 * math.pi, 16, endpoint=False)


def measure_blobs(
    image_bgr: npt.NDArray[np.uint8],
    white: FloatArray,
    x: FloatArray,
    y: FloatArray,
    diameter: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Box and appearance features of a blob at each ``(x, y)`` of about ``diameter`` px.

    Returns:
        ``xyxy [N, 4]`` ball-sized boxes (before the output's minimum side) and ``[N, 14]``
        features: ``log_contrast``, ``peak``, ``ring_spread``, ``ring_bright``,
        ``saturation``, ``green_excess``, the half-maximum diameter, ``aspect``, ``fill``,
        ``ring_green``, ``shadow``, ``plateau``, ``profile_half``, ``profile_one``.
    """
    h, w = white.shape
    n = len(x)
    boxes = np.zeros((n, 4), np.float32)
    feats = np.zeros((n, 14), np.float32)
    # Ring samples, 16 angles at 1.25 and 1.8 search diameters from the centre (outside the
    # blurred ball, inside its neighbourhood), vectorised over the candidates: the local
    # background, its clutter and colour.
    radii = np.array([1.25, 1.8], np.float32)
    dx = (np.cos(_RING_ANGLES)[None, :, None] * radii[None, None, :]).reshape(1, -1)
    dy = (np.sin(_RING_ANGLES)[None, :, None] * radii[None, None, :]).reshape(1, -1)
    reach = np.maximum(diameter, 2.5)[:, None]
    rx = np.clip(np.round(x[:, None] + dx * reach), 0, w - 1).astype(np.intp)
    ry = np.clip(np.round(y[:, None] + dy * reach), 0, h - 1).astype(np.intp)
    ring = white[ry, rx]
    ring_bgr = image_bgr[ry, rx].astype(np.float32)
    ring_green = (ring_bgr[..., 1] - (ring_bgr[..., 0] + ring_bgr[..., 2]) / 2).mean(axis=1) / 255
    lower = (dy > 0.3).reshape(-1)  # samples below the centre, where the shadow falls
    background = np.median(ring, axis=1)
    q1, q3 = np.percentile(ring, [25, 75], axis=1)
    # Radial profile at half and one search diameter, 8 angles each.
    cos8, sin8 = np.cos(_RING_ANGLES[::2]), np.sin(_RING_ANGLES[::2])
    profile = []
    for radius in (0.5, 1.0):
        px = np.clip(np.round(x[:, None] + cos8[None] * reach * radius), 0, w - 1).astype(np.intp)
        py = np.clip(np.round(y[:, None] + sin8[None] * reach * radius), 0, h - 1).astype(np.intp)
        profile.append(white[py, px].mean(axis=1))
    peaks = np.zeros(n, np.float32)
    for i in range(n):
        r = math.ceil(max(float(diameter[i]), 3.0) * 0.8) + 1
        cx, cy = round(float(x[i])), round(float(y[i]))
        x0, y0 = max(cx - r, 0), max(cy - r, 0)
        x1, y1 = min(cx + r + 1, w), min(cy + r + 1, h)
        patch = white[y0:y1, x0:x1] - background[i]
        # The peak near the centre (the maximum's position is only as exact as its level).
        core = patch[max(cy - y0 - 1, 0) : cy - y0 + 2, max(cx - x0 - 1, 0) : cx - x0 + 2]
        peak = float(core.max()) if core.size else float(patch.max())
        contrast = max(peak, 1.0)
        mask = (patch >= 0.5 * contrast).astype(np.uint8)
        _count, labels = cv2.connectedComponents(mask, connectivity=4)
        ly, lx = min(max(cy - y0, 0), patch.shape[0] - 1), min(max(cx - x0, 0), patch.shape[1] - 1)
        label = labels[ly, lx]
        if label == 0:  # the centre itself is below half: take the brightest of its 3x3
            sub = np.unravel_index(int(np.argmax(core)), core.shape) if core.size else (ly, lx)
            label = labels[max(cy - y0 - 1, 0) + sub[0], max(cx - x0 - 1, 0) + sub[1]]
        ys, xs = np.nonzero(labels == label) if label else (np.array([ly]), np.array([lx]))
        weights = patch[ys, xs] + np.float32(1e-3)
        total = float(weights.sum())
        mx = float(weights @ xs) / total + x0
        my = float(weights @ ys) / total + y0
        bw = float(xs.max() - xs.min() + 1)
        bh = float(ys.max() - ys.min() + 1)
        # The extent down to EDGE_FRACTION of the contrast: about the half-maximum extent
        # for a sharp disc, larger for a blurred or shaded ball.
        edge = (patch >= EDGE_FRACTION * contrast).astype(np.uint8)
        _, edge_labels = cv2.connectedComponents(edge, connectivity=4)
        ey, ex = np.nonzero(edge_labels == edge_labels[ys[0], xs[0]])
        ew, eh = float(ex.max() - ex.min() + 1), float(ey.max() - ey.min() + 1)
        ow, oh = min(BOX_SCALE * bw, ew + EDGE_PAD), min(BOX_SCALE * bh, eh + EDGE_PAD)
        boxes[i] = (mx - ow / 2, my - oh / 2, mx + ow / 2, my + oh / 2)
        peaks[i] = peak
        feats[i, 6] = math.sqrt(bw * bh)
        feats[i, 7] = min(bw, bh) / max(bw, bh)
        feats[i, 8] = len(xs) / (bw * bh)
        feats[i, 11] = float(np.count_nonzero(weights >= 0.85 * contrast)) / len(xs)
    # The rest, vectorised over the candidates.
    contrasts = np.maximum(peaks, 1.0)
    centre = boxes.reshape(n, 2, 2).mean(axis=1)
    cx = np.clip(np.round(centre[:, 0]).astype(np.intp), 0, w - 1)
    cy = np.clip(np.round(centre[:, 1]).astype(np.intp), 0, h - 1)
    bgr = image_bgr[cy, cx].astype(np.float32)
    hi, lo = bgr.max(axis=1), bgr.min(axis=1)
    feats[:, 0] = np.log1p(np.maximum(peaks, 0.0))
    feats[:, 1] = (peaks + background) / 255.0
    feats[:, 2] = (q3 - q1) / contrasts
    feats[:, 3] = np.mean(ring - background[:, None] > 0.5 * contrasts[:, None], axis=1)
    feats[:, 4] = (hi - lo) / np.maximum(hi, 1.0)
    feats[:, 5] = (bgr[:, 1] - (bgr[:, 0] + bgr[:, 2]) / 2) / 255.0
    feats[:, 9] = ring_green
    feats[:, 10] = (background - ring[:, lower].min(axis=1)) / contrasts
    feats[:, 12] = (profile[0] - background) / contrasts
    feats[:, 13] = (profile[1] - background) / contrasts
    return boxes, feats


def _in_person_top(
    x: FloatArray, y: FloatArray, people: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    if not len(people) or not len(x):
        return np.zeros(len(x), bool)
    top = people[:, 1] + PERSON_TOP_FRACTION * (people[:, 3] - people[:, 1])
    inside = (
        (x[:, None] >= people[None, :, 0])
        & (x[:, None] <= people[None, :, 2])
        & (y[:, None] >= people[None, :, 1])
        & (y[:, None] < top[None, :])
    )
    return np.asarray(inside.any(axis=1), bool)


def appearance_candidates(
    image_bgr: npt.NDArray[np.uint8],
    diameter_px: Diameter = None,
    *,
    people_xyxy: npt.ArrayLike | None = None,
    roi_mask: npt.NDArray[np.bool_] | None = None,
    max_candidates: int = MAX_CANDIDATES,
) -> BallCandidates:
    """Small bright round blobs of a ball's size in one BGR image (see the module docstring).

    Args:
        image_bgr: ``[H, W, 3]`` uint8 BGR image.
        diameter_px: the expected *physical* ball diameter in pixels: a number for the whole
            image, a float ``[H, W]`` map (e.g. from the rig's panorama model: 0.22 m seen at
            each pixel's pitch point), or None to fit it from ``people_xyxy``.
        people_xyxy: ``[N, 4]`` person boxes in the same image: they give the diameter when
            ``diameter_px`` is None, and flag candidates in the upper part of a person.
        roi_mask: ``[H, W]`` bool, True where a ball may be (the pitch); None: everywhere.
            Only the rows and columns it spans are searched, which is faster (about half the
            time on the v2-dev panoramas), but ``density`` and which candidates make the
            ``max_candidates`` cut then differ from a whole-image search, which is what the
            committed classifier was trained on (``detect_balls`` therefore searches the
            whole image and filters its output by the region).
        max_candidates: the strongest this many are measured and returned.

    Returns:
        The candidates, boxes around the blob, ``score`` a hand-set appearance prior.

    Raises:
        ValueError: not a uint8 ``[H, W, 3]`` image, a diameter map of another shape or a
            non-positive diameter, a mask of another shape.
    """
    _check_image(image_bgr)
    height, width = image_bgr.shape[:2]
    diameter = _check_diameter(diameter_px, (height, width))
    people = (
        np.zeros((0, 4))
        if people_xyxy is None
        else np.asarray(people_xyxy, np.float64).reshape(-1, 4)
    )
    fit = diameter_from_people(people) if diameter is None else None
    x0, y0, x1, y1 = 0, 0, width, height
    if roi_mask is not None:
        if roi_mask.shape != (height, width):
            raise ValueError(f"roi_mask must be ({height}, {width}), got {roi_mask.shape}")
        rows, cols = np.flatnonzero(roi_mask.any(axis=1)), np.flatnonzero(roi_mask.any(axis=0))
        if not len(rows):
            return BallCandidates.empty()
        pad = 2 * int(max(SEARCH_DIAMETERS))  # the filters need context beyond the region
        y0, y1 = max(int(rows[0]) - pad, 0), min(int(rows[-1]) + 1 + pad, height)
        x0, x1 = max(int(cols[0]) - pad, 0), min(int(cols[-1]) + 1 + pad, width)
    crop = np.ascontiguousarray(image_bgr[y0:y1, x0:x1])
    white = _whiteness(crop)
    x, y, response, roundness, scale = _raw_maxima(white)
    x, y = x + x0, y + y0
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    if roi_mask is not None:
        inside &= roi_mask[
            np.clip(y.astype(np.intp), 0, height - 1), np.clip(x.astype(np.intp), 0, width - 1)
        ]
    expected = expected_diameter_at(diameter, fit, x, y)
    ratio = scale / expected
    lo, hi = SIZE_RATIO_RANGE
    # Scales one step beyond the range still count: the search scales are ~1.41 apart.
    sized = np.isnan(ratio) | ((ratio >= lo / 1.41) & (ratio <= hi * 1.41))
    keep = np.flatnonzero(inside & sized)
    x, y, response, roundness, scale = (a[keep] for a in (x, y, response, roundness, scale))
    pick = _dedupe(x, y, response, scale, max_candidates)
    x, y, response, roundness, scale = (a[pick] for a in (x, y, response, roundness, scale))
    found = _assemble(
        crop, white, x - x0, y - y0, scale, response, roundness, (x0, y0), people, diameter, fit
    )
    found.features[:, FEATURE_NAMES.index("density")] = local_density(found.centres, found)
    return found


def local_density(points: FloatArray, around: BallCandidates) -> FloatArray:
    """log1p of how many of ``around`` lie within 4 of their own box sides of each point
    (itself excluded): a ball on the turf is alone, a letter or a crowd makes many blobs."""
    if not len(points) or not len(around):
        return np.zeros(len(points), np.float32)
    centres = around.centres
    side = np.maximum((around.xyxy[:, 2:] - around.xyxy[:, :2]).max(axis=1), 3.0)
    d = points[:, None, :] - centres[None, :, :]
    dist = np.hypot(d[..., 0], d[..., 1])
    count = ((dist < 4 * side[None, :]) & (dist > 0.5)).sum(axis=1)
    return np.asarray(np.log1p(count), np.float32)


def _assemble(
    image_bgr: npt.NDArray[np.uint8],
    white: FloatArray,
    x: FloatArray,
    y: FloatArray,
    scale: FloatArray,
    response: FloatArray,
    roundness: FloatArray,
    origin: tuple[int, int],
    people: npt.NDArray[np.float64],
    diameter: Diameter,
    fit: tuple[float, float] | None,
) -> BallCandidates:
    """Measure the blobs at ``(x, y)`` of ``image_bgr`` (a crop whose top-left pixel is at
    ``origin`` of the full image) and build their candidates in full-image pixels."""
    boxes, measured = measure_blobs(image_bgr, white, x, y, scale)
    boxes += np.array([*origin, *origin], np.float32)
    centre = np.asarray((boxes[:, :2] + boxes[:, 2:]) / 2, np.float32)
    expected = expected_diameter_at(diameter, fit, centre[:, 0], centre[:, 1])
    # Unknown expected size: the size feature is neutral (ratio 2, the typical one).
    size_ratio = np.where(np.isnan(expected), 2.0, measured[:, 6] / np.maximum(expected, 0.5))
    top = _in_person_top(centre[:, 0], centre[:, 1], people)
    features = np.column_stack(
        [
            np.log1p(np.maximum(response, 0.0)),
            roundness,
            measured[:, 0],
            measured[:, 1],
            measured[:, 2],
            measured[:, 3],
            measured[:, 4],
            measured[:, 5],
            np.log(np.maximum(size_ratio, 1e-3)),
            measured[:, 7],
            measured[:, 8],
            top.astype(np.float32),
            measured[:, 9],
            measured[:, 10],
            measured[:, 11],
            measured[:, 12],
            measured[:, 13],
            np.zeros(len(x), np.float32),  # density: set by the caller, who sees all candidates
            np.zeros(len(x), np.float32),
            np.zeros(len(x), np.float32),
        ]
    ).astype(np.float32)
    # The labels (and the ball) reach well past the blob's half maximum on blurred images.
    half = np.maximum(boxes[:, 2:] - boxes[:, :2], MIN_BOX) / 2
    xyxy = np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)
    return BallCandidates(xyxy, appearance_prior(features), features)


def _curvature_at(white: FloatArray, x: int, y: int, diameter: float) -> tuple[float, float]:
    """Response and roundness (as in the scale search) at one pixel of a small crop."""
    sigma = max(diameter, 2.0) / (2 * math.sqrt(2))
    s = cv2.GaussianBlur(white, (0, 0), sigma)
    h, w = s.shape
    x, y = min(max(x, 1), w - 2), min(max(y, 1), h - 2)
    hxx = s[y, x - 1] + s[y, x + 1] - 2 * s[y, x]
    hyy = s[y - 1, x] + s[y + 1, x] - 2 * s[y, x]
    hxy = (s[y + 1, x + 1] - s[y + 1, x - 1] - s[y - 1, x + 1] + s[y - 1, x - 1]) / 4
    half_trace = -(hxx + hyy) / 2
    root = math.sqrt(((hxx - hyy) / 2) ** 2 + hxy**2)
    small, large = (half_trace - root) * sigma**2, (half_trace + root) * sigma**2
    return float(small), float(small / large) if large > 1e-6 else 0.0


def measure_candidates_at(
    image_bgr: npt.NDArray[np.uint8],
    xyxy: npt.ArrayLike,
    expected_diameter: npt.ArrayLike,
    people_xyxy: npt.ArrayLike | None = None,
) -> BallCandidates:
    """Candidates at given boxes (the network's), with the same features as the blobs'.

    Each box is measured on a crop around it only (a few boxes a frame: the whole-image
    channel would cost more than all of them). The boxes returned are the measured blobs'.

    Args:
        image_bgr: the image.
        xyxy: ``[M, 4]`` boxes; their centre is where the blob is looked for, their size the
            search size.
        expected_diameter: ``[M]`` expected physical diameter at each box, NaN where unknown.
        people_xyxy: person boxes, for ``in_person_top``.
    """
    _check_image(image_bgr)
    boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)
    expected = np.asarray(expected_diameter, np.float32).reshape(-1)
    people = (
        np.zeros((0, 4))
        if people_xyxy is None
        else np.asarray(people_xyxy, np.float64).reshape(-1, 4)
    )
    h, w = image_bgr.shape[:2]
    parts = []
    for box, exp in zip(boxes, expected, strict=True):
        size = float(max(box[2] - box[0], box[3] - box[1], 3.0))
        cx, cy = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
        margin = int(3 * size) + 4
        x0, y0 = max(int(cx) - margin, 0), max(int(cy) - margin, 0)
        x1, y1 = min(int(cx) + margin + 1, w), min(int(cy) + margin + 1, h)
        crop = np.ascontiguousarray(image_bgr[y0:y1, x0:x1])
        white = _whiteness(crop)
        px, py = np.float32(cx - x0), np.float32(cy - y0)
        response, roundness = _curvature_at(white, round(float(px)), round(float(py)), size)
        parts.append(
            _assemble(
                crop,
                white,
                np.array([px], np.float32),
                np.array([py], np.float32),
                np.array([size], np.float32),
                np.array([response], np.float32),
                np.array([roundness], np.float32),
                (x0, y0),
                people,
                float(exp) if np.isfinite(exp) and exp > 0 else None,
                None,
            )
        )
    if not parts:
        return BallCandidates.empty()
    return BallCandidates(
        np.concatenate([p.xyxy for p in parts]),
        np.concatenate([p.score for p in parts]),
        np.concatenate([p.features for p in parts]),
    )


def appearance_prior(features: FloatArray) -> FloatArray:
    """A hand-set score from contrast and roundness, halved in the upper part of a person."""
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}
    contrast = features[:, col["log_contrast"]]
    round_ = features[:, col["roundness"]]
    score = 1.0 / (1.0 + np.exp(-(contrast - 3.0) * 2.0)) * np.clip(round_ * 2.0, 0.0, 1.0)
    score = np.where(features[:, col["in_person_top"]] > 0, score * 0.5, score)
    return np.asarray(score, np.float32)
