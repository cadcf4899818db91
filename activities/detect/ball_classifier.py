"""Which ball candidates are balls: merge the network's ball boxes with the appearance blobs and
score them with a small logistic model.

Why a separate scorer: the appearance filter (:mod:`activities.detect.ball_appearance`) finds
most balls but also hundreds of other bright dots per panorama (socks, heads, line ends,
letters, painted marks, the stands); the network finds few balls but its score is informative
when it fires, even a weak one. A logistic regression over the blob's hand features
(:data:`~activities.detect.ball_appearance.FEATURE_NAMES`) and the network's score at the same
place, with every product of two features (:data:`DESIGN_NAMES`), separates them about as well
as anything we could fit on ~150 labelled balls (most of them a few spare balls seen in many
frames), costs well under a millisecond a frame, and is a few kilobytes of weights.

The model (:data:`WEIGHTS_PATH`, written by ``python -m programs.train_ball``): the features go
through :func:`design_matrix`, are standardised with the training set's mean and scale, and
``p = sigmoid(w . z + b)``. **Trained on** candidates from 100 synthetic frames x 2 cameras
(``synth``: a simulated match filmed by the default rig, seed 11; weight 0.1 each) and from all
48 labelled SoccerTrack-v2 panoramas (weight 1; unlabelled candidates at a spot where another
frame has a labelled ball are left out, see ``programs.train_ball.unlabelled_spots``), natural
class weights, ridge 1e-3. Leave-one-clip-out figures: ``bench/ball_real.py``.

:data:`DEFAULT_THRESHOLD` 0.1 is the highest threshold of the 0.05 grid whose leave-one-clip-out
ball recall on the pitch (IoU 0.3) is at least 0.45: recall is what the tracker cannot make up
later, and the tracker's motion model removes isolated false balls that a still image cannot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from activities.detect.ball_appearance import (
    FEATURE_NAMES,
    BallCandidates,
    Diameter,
    appearance_candidates,
    expected_diameter_at,
    local_density,
    measure_candidates_at,
)
from activities.detect.detections import Detections

__all__ = [
    "DEFAULT_THRESHOLD",
    "WEIGHTS_PATH",
    "BallModel",
    "classify_balls",
    "design_matrix",
    "detect_balls",
    "fit_logistic",
    "load_model",
    "merge_network",
]

WEIGHTS_PATH = Path(__file__).with_name("ball_classifier.npz")
"""The committed weights (``python -m programs.train_ball`` rewrites them)."""

DEFAULT_THRESHOLD = 0.1
"""The operating probability; ``bench/ball_real.py`` reports the curve around it."""

_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}

_BASE_NAMES: tuple[str, ...] = (
    *FEATURE_NAMES,
    "log_size_ratio_sq",  # too small and too large are both unlike a ball
    "net_present",  # whether the network fired here at all
)
_PAIRS = np.triu_indices(len(_BASE_NAMES))

DESIGN_NAMES: tuple[str, ...] = (
    *_BASE_NAMES,
    *(f"{_BASE_NAMES[i]}*{_BASE_NAMES[j]}" for i, j in zip(*_PAIRS, strict=True)),
)
"""The model's inputs: the features, two fixed terms, and every product of two of those.

The products make the logistic model quadratic: a painted dot on the turf is bright, round and
on grass like a ball, and only differs in combinations (larger than a ball *and* flat *and*
without a shadow). On the real panoramas this lifts leave-one-clip-out precision at the same
recall by about half over the linear model (``python -m programs.train_ball`` prints both)."""


def design_matrix(features: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """The model's inputs (:data:`DESIGN_NAMES`) from candidate features, not standardised."""
    f = np.asarray(features, np.float64).reshape(-1, len(FEATURE_NAMES))
    size = f[:, _COL["log_size_ratio"]]
    base = np.concatenate(
        [f, np.column_stack([size * size, (f[:, _COL["net_score"]] > 0).astype(np.float64)])],
        axis=1,
    )
    return np.concatenate([base, base[:, _PAIRS[0]] * base[:, _PAIRS[1]]], axis=1)


@dataclass(frozen=True)
class BallModel:
    """A logistic model over :func:`design_matrix` inputs.

    Attributes:
        mean: ``[D]`` the training inputs' mean.
        scale: ``[D]`` their standard deviation (1 where constant).
        weights: ``[D]`` coefficients of the standardised inputs.
        bias: the intercept.
    """

    mean: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float64]
    bias: float

    def __post_init__(self) -> None:
        d = len(DESIGN_NAMES)
        for name in ("mean", "scale", "weights"):
            if np.shape(getattr(self, name)) != (d,):
                raise ValueError(f"{name} must have shape ({d},), got {getattr(self, name).shape}")

    def probability(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``[N]`` probabilities that each candidate is a ball."""
        z = (design_matrix(features) - self.mean) / self.scale
        logit = z @ self.weights + self.bias
        return (1.0 / (1.0 + np.exp(-np.clip(logit, -30, 30)))).astype(np.float32)

    def save(self, path: Path) -> None:
        """Write the model as a small ``.npz`` (float32 arrays plus the names they index)."""
        np.savez_compressed(
            path,
            names=np.array(DESIGN_NAMES),
            mean=self.mean.astype(np.float32),
            scale=self.scale.astype(np.float32),
            weights=self.weights.astype(np.float32),
            bias=np.float32(self.bias),
        )


def load_model(path: Path = WEIGHTS_PATH) -> BallModel:
    """Read a model :meth:`BallModel.save` wrote.

    Raises:
        ValueError: the file was written for other features (its names differ).
    """
    with np.load(path, allow_pickle=False) as data:
        names = tuple(str(n) for n in data["names"])
        if names != DESIGN_NAMES:
            raise ValueError(f"{path} was trained on features {names}, expected {DESIGN_NAMES}")
        return BallModel(
            mean=data["mean"].astype(np.float64),
            scale=data["scale"].astype(np.float64),
            weights=data["weights"].astype(np.float64),
            bias=float(data["bias"]),
        )


def fit_logistic(
    features: npt.NDArray[np.float32],
    labels: npt.NDArray[np.bool_],
    *,
    l2: float = 1e-3,
    positive_weight: float | None = None,
    sample_weight: npt.NDArray[np.float64] | None = None,
    iterations: int = 300,
) -> BallModel:
    """Fit the logistic model by Newton's method (deterministic: no sampling, no seed needed).

    Args:
        features: ``[N, len(FEATURE_NAMES)]`` candidate features.
        labels: ``[N]`` True for a ball.
        l2: ridge penalty on the standardised weights (not the bias), per example.
        positive_weight: weight of a positive example; None balances the classes.
        sample_weight: ``[N]`` a further weight per example (0 leaves one out); None: 1.
        iterations: at most this many Newton steps (it converges in ~10).
    """
    x = design_matrix(features)
    y = np.asarray(labels, np.float64)
    if not (0 < y.sum() < len(y)):
        raise ValueError("need both positive and negative examples")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.concatenate([(x - mean) / scale, np.ones((len(x), 1))], axis=1)
    pw = (len(y) - y.sum()) / y.sum() if positive_weight is None else positive_weight
    sample = np.where(y > 0, pw, 1.0)
    if sample_weight is not None:
        sample = sample * np.asarray(sample_weight, np.float64)
    sample /= sample.mean()
    penalty = np.full(z.shape[1], l2 * len(y))
    penalty[-1] = 0.0
    theta = np.zeros(z.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ theta, -30, 30)))
        grad = z.T @ (sample * (p - y)) + penalty * theta
        hess = (z * (sample * p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return BallModel(mean, scale, theta[:-1], float(theta[-1]))


def merge_network(
    candidates: BallCandidates,
    image_bgr: npt.NDArray[np.uint8],
    net_xyxy: npt.ArrayLike,
    net_score: npt.ArrayLike,
    expected_diameter: npt.ArrayLike | None = None,
    people_xyxy: npt.ArrayLike | None = None,
) -> BallCandidates:
    """Join the network's ball boxes to the blob candidates.

    A network box whose centre lies within its own half-size (at least 3 px) of a blob gives
    that blob its score (``net_score``, the best if several); one with no blob near it becomes
    a candidate of its own (``from_network`` 1), measured on the image at its centre with the
    box's size as the search size, and keeping the network's box.

    Args:
        candidates: from :func:`~activities.detect.ball_appearance.appearance_candidates`.
        image_bgr: the image they came from.
        net_xyxy: ``[M, 4]`` the network's ball boxes (COCO class 32) in the same image.
        net_score: ``[M]`` their scores.
        expected_diameter: ``[M]`` the expected physical diameter at each box (NaN unknown);
            None: unknown everywhere (the size feature is then neutral).
        people_xyxy: person boxes in the image, for the new candidates' ``in_person_top``.
    """
    boxes = np.asarray(net_xyxy, np.float32).reshape(-1, 4)
    scores = np.asarray(net_score, np.float32).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f"{len(boxes)} network boxes but {len(scores)} scores")
    if not len(boxes):
        return candidates
    feats = candidates.features.copy()
    centres = candidates.centres
    net_centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    reach = np.maximum((boxes[:, 2:] - boxes[:, :2]).max(axis=1) / 2, 3.0)
    alone = np.ones(len(boxes), bool)
    if len(centres):
        dist = np.hypot(*(centres[:, None, :] - net_centre[None, :, :]).transpose(2, 0, 1))
        near = dist <= reach[None, :]
        best = np.where(near, scores[None, :], 0.0).max(axis=1)
        col = _COL["net_score"]
        feats[:, col] = np.maximum(feats[:, col], best)
        alone = ~near.any(axis=0)
    merged = BallCandidates(candidates.xyxy, candidates.score, feats)
    if not alone.any():
        return merged
    expected = (
        np.full(len(boxes), np.nan, np.float32)
        if expected_diameter is None
        else np.asarray(expected_diameter, np.float32).reshape(-1)
    )
    extra = measure_candidates_at(image_bgr, boxes[alone], expected[alone], people_xyxy)
    extra.features[:, _COL["net_score"]] = scores[alone]
    extra.features[:, _COL["density"]] = local_density(extra.centres, candidates)
    extra.features[:, _COL["from_network"]] = 1.0
    return BallCandidates(
        np.concatenate([merged.xyxy, boxes[alone]]),
        np.concatenate([merged.score, scores[alone]]),
        np.concatenate([merged.features, extra.features]),
    )


def classify_balls(
    candidates: BallCandidates, model: BallModel, threshold: float = DEFAULT_THRESHOLD
) -> BallCandidates:
    """Score candidates with ``model`` and keep those at or above ``threshold``.

    Returns:
        The kept candidates, best first, ``score`` the model's probability.
    """
    if not len(candidates):
        return candidates
    prob = model.probability(candidates.features)
    keep = np.flatnonzero(prob >= threshold)
    keep = keep[np.argsort(-prob[keep], kind="stable")]
    return BallCandidates(candidates.xyxy[keep], prob[keep], candidates.features[keep])


def detect_balls(
    image_bgr: npt.NDArray[np.uint8],
    detections: Detections,
    model: BallModel,
    diameter_px: Diameter = None,
    *,
    roi_mask: npt.NDArray[np.bool_] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> Detections:
    """The ball boxes of one image: blobs and network balls, merged and classified.

    The one call the pipeline needs per panorama frame.

    Args:
        image_bgr: ``[H, W, 3]`` uint8 BGR image.
        detections: the tiled network's output on it: persons (at the stage's threshold) and
            sports balls (ideally down to 0.05: ``programs.train_ball.NET_BALL_FLOOR``).
        model: :func:`load_model`'s.
        diameter_px: the expected physical ball diameter, a number or a float ``[H, W]`` map
            (see :func:`~activities.detect.ball_appearance.appearance_candidates`); None fits
            it from the person boxes.
        roi_mask: ``[H, W]`` bool where a ball may be (the pitch): balls whose centre is
            outside are dropped; None: everywhere.
        threshold: the classifier's probability to keep a ball.

    Returns:
        Sports-ball detections (class 32), score the classifier's probability, best first.
    """
    people = detections.of_class(Detections.PERSON).xyxy
    balls = detections.of_class(Detections.SPORTS_BALL)
    # The whole image is searched even with a region: the model was trained on whole-image
    # candidates, and two features depend on what else is found (``density``; the strongest
    # MAX_CANDIDATES kept), so searching the pitch only shifts them (leave-one-clip-out on
    # the v2-dev panoramas fell from 0.55 to 0.52 recall). The region filters the output.
    found = appearance_candidates(image_bgr, diameter_px, people_xyxy=people)
    expected = None
    if diameter_px is not None and len(balls):
        centre = np.asarray((balls.xyxy[:, :2] + balls.xyxy[:, 2:]) / 2, np.float32)
        checked = diameter_px if isinstance(diameter_px, np.ndarray) else float(diameter_px)
        expected = expected_diameter_at(checked, None, centre[:, 0], centre[:, 1])
    merged = merge_network(found, image_bgr, balls.xyxy, balls.score, expected, people)
    kept = classify_balls(merged, model, threshold)
    if roi_mask is not None and len(kept):
        h, w = roi_mask.shape
        centre = kept.centres
        cx = np.clip(centre[:, 0].astype(np.intp), 0, w - 1)
        cy = np.clip(centre[:, 1].astype(np.intp), 0, h - 1)
        kept = kept.select(np.asarray(roi_mask[cy, cx], bool))
    return Detections(
        xyxy=kept.xyxy,
        score=kept.score,
        class_id=np.full(len(kept), Detections.SPORTS_BALL, np.int16),
    )
