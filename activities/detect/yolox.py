"""YOLOX (Megvii, Apache-2.0) on ONNX Runtime: preprocessing, vectorised decoding, class-wise NMS.

The ONNX export we use (``yolox_nano.onnx``, see ``../shared/data/README.md``) outputs raw head
values, ``[1, A, 85]`` = ``cx, cy, w, h, objectness, 80 class scores`` over the anchor-free grids
of strides 8, 16 and 32; the grid offsets and the exponential are applied here, in numpy.

The pure functions (:func:`preprocess`, :func:`decode`, :func:`nms`) need no model, so they are
tested on hand-built tensors; :class:`YoloxDetector` wires them around an ``InferenceSession``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from activities.detect.detections import Detections

__all__ = [
    "DEFAULT_CLASS_IDS",
    "PAD_VALUE",
    "STRIDES",
    "YoloxDetector",
    "decode",
    "make_grids",
    "nms",
    "preprocess",
]

STRIDES: tuple[int, ...] = (8, 16, 32)
PAD_VALUE = 114  # YOLOX's letterbox fill (grey); the model was trained with it.
DEFAULT_CLASS_IDS: tuple[int, ...] = (Detections.PERSON, Detections.SPORTS_BALL)
_FALLBACK_INPUT_HW = (416, 416)


def preprocess(
    image_bgr: npt.NDArray[np.uint8], input_hw: tuple[int, int] = _FALLBACK_INPUT_HW
) -> tuple[npt.NDArray[np.float32], float]:
    """Letterbox an image into the model's input tensor, the way YOLOX was trained.

    The image is resized keeping its aspect ratio so that it fits ``input_hw``, pasted at the
    top-left of a canvas filled with 114, and returned as raw 0-255 BGR float32 in NCHW (the
    export has no mean/std normalisation).

    Args:
        image_bgr: ``[H, W, 3]`` uint8 BGR image.
        input_hw: the model's input ``(height, width)``.

    Returns:
        ``(tensor, scale)``: the ``[1, 3, h, w]`` float32 tensor and the factor that maps image
        pixels to tensor pixels (divide decoded boxes by it to return to the image).
    """
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] BGR image, got shape {image_bgr.shape}")
    in_h, in_w = input_hw
    h, w = image_bgr.shape[:2]
    if h == 0 or w == 0:
        raise ValueError("image is empty")
    scale = min(in_h / h, in_w / w)
    canvas = np.full((in_h, in_w, 3), PAD_VALUE, dtype=np.uint8)
    if scale == 1.0:
        # The tiled path feeds native-resolution crops: skip the resize so no pixel is touched.
        canvas[:h, :w] = image_bgr
    else:
        new_w = min(in_w, round(w * scale))
        new_h = min(in_h, round(h * scale))
        canvas[:new_h, :new_w] = cv2.resize(
            image_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR
        )
    tensor = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32)
    return tensor, float(scale)


def make_grids(
    input_hw: tuple[int, int], strides: Sequence[int] = STRIDES
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The cell offsets and strides of every YOLOX output row.

    Rows follow the export's order: strides ascending, then cells row-major (x fastest).

    Args:
        input_hw: the model's input ``(height, width)``.
        strides: the head strides.

    Returns:
        ``(grid, stride)``: float32 ``[A, 2]`` cell ``(x, y)`` and float32 ``[A, 1]`` stride.
    """
    grids: list[npt.NDArray[np.float32]] = []
    steps: list[npt.NDArray[np.float32]] = []
    for s in strides:
        gh, gw = input_hw[0] // s, input_hw[1] // s
        xv, yv = np.meshgrid(np.arange(gw, dtype=np.float32), np.arange(gh, dtype=np.float32))
        grids.append(np.stack((xv, yv), axis=-1).reshape(-1, 2))
        steps.append(np.full((gh * gw, 1), s, dtype=np.float32))
    return np.concatenate(grids), np.concatenate(steps)


def decode(
    raw_output: npt.NDArray[np.float32],
    scale: float,
    score_threshold: float,
    *,
    input_hw: tuple[int, int] = _FALLBACK_INPUT_HW,
    class_ids: Iterable[int] = DEFAULT_CLASS_IDS,
    grids: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None,
) -> Detections:
    """Turn the raw YOLOX head output into boxes in the original image's pixels.

    ``xy = (raw_xy + grid) * stride``, ``wh = exp(raw_wh) * stride``, score = objectness times
    class score. Each box keeps its best class *among* ``class_ids``: a ball the model rates
    slightly higher as "orange" still counts as a ball, and the score threshold keeps such
    second choices honest. No NMS is applied here.

    Args:
        raw_output: ``[1, A, 5 + C]`` or ``[A, 5 + C]`` head output.
        scale: the factor :func:`preprocess` returned; boxes are divided by it.
        score_threshold: keep boxes scoring strictly above this.
        input_hw: the model's input ``(height, width)``, which fixes the grids.
        class_ids: the classes to keep (COCO ids).
        grids: precomputed :func:`make_grids` output, to save rebuilding it per call.

    Returns:
        The boxes above the threshold, unclipped (a box may reach past the image edge).
    """
    raw = np.asarray(raw_output, dtype=np.float32)
    if raw.ndim == 3:
        if raw.shape[0] != 1:
            raise ValueError(f"decode handles one image at a time, got batch {raw.shape[0]}")
        raw = raw[0]
    grid, stride = grids if grids is not None else make_grids(input_hw)
    if raw.ndim != 2 or raw.shape[0] != grid.shape[0] or raw.shape[1] < 6:
        raise ValueError(
            f"raw output of shape {raw_output.shape} does not match {grid.shape[0]} anchors "
            f"for input {input_hw}"
        )
    classes = np.fromiter(class_ids, dtype=np.int64)
    if classes.size == 0 or classes.min() < 0 or classes.max() >= raw.shape[1] - 5:
        raise ValueError(f"class_ids must be within [0, {raw.shape[1] - 5}), got {classes}")

    # Score first, geometry only for the survivors: a 416 input has 3549 anchors of which a few
    # dozen pass the threshold, so this avoids most of the exp() work.
    cls_scores = raw[:, 5 + classes] * raw[:, 4:5]
    best = np.argmax(cls_scores, axis=1)
    score = cls_scores[np.arange(raw.shape[0]), best]
    keep = score > score_threshold
    if not keep.any():
        return Detections.empty()
    r = raw[keep]
    centre = (r[:, 0:2] + grid[keep]) * stride[keep]
    # Clamp before exp: a wild raw value must not overflow to inf and fail validation.
    size = np.exp(np.minimum(r[:, 2:4], 20.0)) * stride[keep]
    xyxy = np.concatenate([centre - size / 2, centre + size / 2], axis=1) / np.float32(scale)
    return Detections(
        xyxy=xyxy.astype(np.float32),
        score=score[keep].astype(np.float32),
        class_id=classes[best[keep]].astype(np.int16),
    )


def nms(detections: Detections, iou_threshold: float) -> Detections:
    """Class-wise non-maximum suppression (OpenCV's ``NMSBoxesBatched``).

    Args:
        detections: the candidate boxes.
        iou_threshold: a box overlapping a higher-scoring box of the same class by more than
            this intersection-over-union is dropped.

    Returns:
        The kept detections, highest score first.
    """
    if len(detections) == 0:
        return detections
    xywh = detections.xyxy.copy()
    xywh[:, 2:] -= xywh[:, :2]
    # score_threshold=-inf: thresholding is decode's job; NMS must not drop anything on score.
    # OpenCV's stubs say Sequence; it takes numpy arrays as they are, without a list copy.
    nms_batched: Any = cv2.dnn.NMSBoxesBatched
    kept = nms_batched(
        xywh,
        detections.score,
        detections.class_id.astype(np.int32),
        -np.inf,
        float(iou_threshold),
    )
    idx = np.asarray(kept, dtype=np.int64).reshape(-1)
    # OpenCV already returns indices by descending score; sorting again is cheap insurance.
    idx = idx[np.argsort(-detections.score[idx], kind="stable")]
    return detections.filter(idx)


def clip_to_image(detections: Detections, width: int, height: int) -> Detections:
    """Clip boxes to ``[0, width] x [0, height]`` (a box cut by the image edge ends at it)."""
    if len(detections) == 0:
        return detections
    xyxy = detections.xyxy.copy()
    np.clip(xyxy[:, 0::2], 0, width, out=xyxy[:, 0::2])
    np.clip(xyxy[:, 1::2], 0, height, out=xyxy[:, 1::2])
    return Detections(xyxy=xyxy, score=detections.score, class_id=detections.class_id)


class YoloxDetector:
    """A YOLOX ONNX model on ONNX Runtime, for one image at a time.

    Batching tiles gains nothing on CPU ONNX Runtime (see DESIGN.md), so the detector runs one
    image per call; callers that tile loop over tiles.

    Args:
        model_path: the ``.onnx`` file (see :func:`activities.detect.model_store.resolve_model`).
        providers: ONNX Runtime execution providers in order of preference; ``None`` uses every
            provider this ONNX Runtime build offers (CUDA/TensorRT first where present).
        intra_op_threads: threads per operator; ``None`` lets ONNX Runtime pick (all cores).
            Set it when several detectors share a machine.
        class_ids: COCO classes to report; default person and sports ball.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        providers: Sequence[str] | None = None,
        intra_op_threads: int | None = None,
        class_ids: Iterable[int] = DEFAULT_CLASS_IDS,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"YOLOX model not found: {path}")
        options = ort.SessionOptions()
        if intra_op_threads is not None:
            options.intra_op_num_threads = int(intra_op_threads)
        # One image per run: inter-op parallelism has nothing to overlap.
        options.inter_op_num_threads = 1
        if providers is None:
            # The Azure provider (remote inference) is listed by stock wheels but is not a
            # local device; leave it out of the default.
            chosen = [p for p in ort.get_available_providers() if p != "AzureExecutionProvider"]
        else:
            chosen = list(providers)
        self._session = ort.InferenceSession(str(path), sess_options=options, providers=chosen)
        inp = self._session.get_inputs()[0]
        self._input_name: str = inp.name
        self._output_name: str = self._session.get_outputs()[0].name
        shape = inp.shape
        # Dynamic exports name their axes with strings; fall back to the nano's 416 then.
        if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
            self.input_hw: tuple[int, int] = (shape[2], shape[3])
        else:
            self.input_hw = _FALLBACK_INPUT_HW
        self.class_ids: tuple[int, ...] = tuple(int(c) for c in class_ids)
        self._grids = make_grids(self.input_hw)

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually uses."""
        return list(self._session.get_providers())

    def preprocess(self, image_bgr: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float32], float]:
        """See :func:`preprocess`; uses this model's input size."""
        return preprocess(image_bgr, self.input_hw)

    def decode(
        self, raw_output: npt.NDArray[np.float32], scale: float, score_threshold: float
    ) -> Detections:
        """See :func:`decode`; uses this model's grids and class set."""
        return decode(
            raw_output,
            scale,
            score_threshold,
            input_hw=self.input_hw,
            class_ids=self.class_ids,
            grids=self._grids,
        )

    def infer(self, tensor: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Run the network on a preprocessed ``[1, 3, h, w]`` tensor; returns the raw head."""
        out = self._session.run([self._output_name], {self._input_name: tensor})[0]
        return np.asarray(out, dtype=np.float32)

    def detect(
        self,
        image_bgr: npt.NDArray[np.uint8],
        score_threshold: float = 0.3,
        nms_iou: float = 0.45,
    ) -> Detections:
        """Detect objects in one image, letterboxed to the model's input size.

        Args:
            image_bgr: ``[H, W, 3]`` uint8 BGR image (any size; downscaled when larger than
                the input, so small players vanish on a whole 4K frame: tile instead).
            score_threshold: minimum objectness times class score.
            nms_iou: class-wise NMS IoU threshold.

        Returns:
            Boxes in ``image_bgr`` pixels, clipped to the image, highest score first.
        """
        tensor, scale = self.preprocess(image_bgr)
        found = self.decode(self.infer(tensor), scale, score_threshold)
        h, w = image_bgr.shape[:2]
        return nms(clip_to_image(found, w, h), nms_iou)
