"""One detector backend for every model: ONNX Runtime, letterbox, a decoder per output layout, NMS.

A better detector is dropped in as a file plus a :class:`~activities.detect.model_spec.ModelSpec`
(registered with ``polyvision models add``), never as new code: every model goes through the
same steps, and only the decoder differs.

1. **Letterbox** (:func:`letterbox`): resize keeping the aspect ratio so the image fits the
   input, paste it top-left on a canvas of 114 grey. Top-left rather than centred means boxes
   map back by a division alone; both YOLOX and Ultralytics exports are fully convolutional, so
   where the padding sits does not change what they see.
2. **Input convention** (:data:`INPUT_CONVENTIONS`), fixed by the decoder family: YOLOX exports
   take BGR 0-255, Ultralytics (YOLOv8/11) exports take RGB 0-1.
3. **Decode** the first output into boxes in image pixels, keeping per box its best class among
   the spec's mapped classes and renaming it to our id (person 0, ball 32):

   - ``yolox`` (:func:`decode_yolox`): ``[1, A, 5 + C]`` raw head values over the anchor-free
     grids of strides 8/16/32; ``xy = (raw + cell) * stride``, ``wh = exp(raw) * stride``,
     score = objectness times class score.
   - ``yolov8`` (:func:`decode_yolov8`): ``[1, 4 + C, N]`` with ``cx, cy, w, h`` already in
     input pixels and per-class scores, no objectness.
4. **Clip** to the image and run class-wise **NMS** (:func:`nms`).

The pure functions need no model and are tested on hand-built arrays; :class:`OnnxDetector`
wires them around an ``InferenceSession``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from activities.detect.detections import Detections
from activities.detect.model_spec import Decoder, ModelSpec, ModelSpecError

__all__ = [
    "INPUT_CONVENTIONS",
    "PAD_VALUE",
    "STRIDES",
    "InputConvention",
    "OnnxDetector",
    "Provider",
    "check_model_file",
    "clip_to_image",
    "decode_yolov8",
    "decode_yolox",
    "letterbox",
    "make_grids",
    "nms",
    "preprocess",
]

STRIDES: tuple[int, ...] = (8, 16, 32)
PAD_VALUE = 114  # the letterbox grey both YOLOX and Ultralytics train with

Provider = str | tuple[str, Mapping[str, str]]
"""An ONNX Runtime execution provider: its name, or its name and its options."""


@dataclass(frozen=True)
class InputConvention:
    """How a model family wants its input tensor.

    Attributes:
        rgb: channels in RGB order (else BGR, OpenCV's).
        scale: multiplies the 0-255 pixel values (1 keeps them, 1/255 maps to 0-1).
    """

    rgb: bool
    scale: float


YOLOX_INPUT: Final = InputConvention(rgb=False, scale=1.0)
YOLOV8_INPUT: Final = InputConvention(rgb=True, scale=1.0 / 255.0)
INPUT_CONVENTIONS: Final[Mapping[Decoder, InputConvention]] = {
    "yolox": YOLOX_INPUT,
    "yolov8": YOLOV8_INPUT,
}


# --- preprocessing ------------------------------------------------------------------------


def letterbox(
    image_bgr: npt.NDArray[np.uint8], input_hw: tuple[int, int]
) -> tuple[npt.NDArray[np.uint8], float]:
    """Fit an image into the model's input, keeping its aspect ratio, pasted top-left.

    Args:
        image_bgr: ``[H, W, 3]`` uint8 BGR image.
        input_hw: the model's input ``(height, width)``.

    Returns:
        ``(canvas, scale)``: the ``[h, w, 3]`` uint8 canvas (padding is :data:`PAD_VALUE`) and
        the factor mapping image pixels to canvas pixels (divide decoded boxes by it).
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
    return canvas, float(scale)


def preprocess(
    image_bgr: npt.NDArray[np.uint8],
    input_hw: tuple[int, int],
    convention: InputConvention = YOLOX_INPUT,
) -> tuple[npt.NDArray[np.float32], float]:
    """Letterbox an image and lay it out as the model's ``[1, 3, h, w]`` float32 input.

    Args:
        image_bgr: ``[H, W, 3]`` uint8 BGR image.
        input_hw: the model's input ``(height, width)``.
        convention: channel order and value scale of the model family.

    Returns:
        ``(tensor, scale)``; see :func:`letterbox` for ``scale``.
    """
    canvas, scale = letterbox(image_bgr, input_hw)
    if convention.rgb:
        canvas = canvas[:, :, ::-1]
    tensor = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32)
    if convention.scale != 1.0:
        tensor *= np.float32(convention.scale)
    return tensor, scale


# --- decoders -----------------------------------------------------------------------------


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


def _class_arrays(
    class_map: Sequence[tuple[int, int]], n_classes: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int16]]:
    """The model indices to score and our id of each, checked against the model's class count."""
    indices = np.array([index for index, _ in class_map], dtype=np.int64)
    ours = np.array([our for _, our in class_map], dtype=np.int16)
    if indices.size == 0 or indices.min() < 0 or indices.max() >= n_classes:
        raise ValueError(
            f"class map indices must be within [0, {n_classes}) (the model's classes), "
            f"got {indices.tolist()}"
        )
    return indices, ours


def _one_image(raw_output: npt.ArrayLike) -> npt.NDArray[np.float32]:
    raw = np.asarray(raw_output, dtype=np.float32)
    if raw.ndim == 3:
        if raw.shape[0] != 1:
            raise ValueError(f"decoders handle one image at a time, got batch {raw.shape[0]}")
        raw = raw[0]
    return raw


def decode_yolox(
    raw_output: npt.NDArray[np.float32],
    scale: float,
    score_threshold: float,
    *,
    input_hw: tuple[int, int],
    class_map: Sequence[tuple[int, int]],
    grids: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None,
) -> Detections:
    """Turn a raw YOLOX head output into boxes in the original image's pixels.

    ``xy = (raw_xy + grid) * stride``, ``wh = exp(raw_wh) * stride``, score = objectness times
    class score. Each box keeps its best class *among* the mapped ones: a ball the model rates
    slightly higher as "orange" still counts as a ball, and the score threshold keeps such
    second choices honest. No NMS is applied here.

    Args:
        raw_output: ``[1, A, 5 + C]`` or ``[A, 5 + C]`` head output.
        scale: the factor :func:`preprocess` returned; boxes are divided by it.
        score_threshold: keep boxes scoring strictly above this.
        input_hw: the model's input ``(height, width)``, which fixes the grids.
        class_map: ``(model class index, our class id)`` pairs to keep.
        grids: precomputed :func:`make_grids` output, to save rebuilding it per call.

    Returns:
        The boxes above the threshold, with our class ids, unclipped (a box may reach past the
        image edge).
    """
    raw = _one_image(raw_output)
    grid, stride = grids if grids is not None else make_grids(input_hw)
    if raw.ndim != 2 or raw.shape[0] != grid.shape[0] or raw.shape[1] < 6:
        raise ValueError(
            f"raw output of shape {np.shape(raw_output)} does not match {grid.shape[0]} anchors "
            f"for input {input_hw}"
        )
    classes, ours = _class_arrays(class_map, raw.shape[1] - 5)

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
        class_id=ours[best[keep]],
    )


def decode_yolov8(
    raw_output: npt.NDArray[np.float32],
    scale: float,
    score_threshold: float,
    *,
    class_map: Sequence[tuple[int, int]],
) -> Detections:
    """Turn a YOLOv8-style output into boxes in the original image's pixels.

    The Ultralytics export layout (YOLOv8, YOLO11): ``[1, 4 + C, N]``, rows ``cx, cy, w, h``
    in input pixels then one score per class, already sigmoid-ed; there is no objectness, the
    class score is the box's score. As for YOLOX, each box keeps its best mapped class.

    Args:
        raw_output: ``[1, 4 + C, N]`` or ``[4 + C, N]`` output.
        scale: the factor :func:`preprocess` returned; boxes are divided by it.
        score_threshold: keep boxes scoring strictly above this.
        class_map: ``(model class index, our class id)`` pairs to keep.

    Returns:
        The boxes above the threshold, with our class ids, unclipped. No NMS is applied here.
    """
    raw = _one_image(raw_output)
    if raw.ndim != 2 or raw.shape[0] < 5:
        raise ValueError(
            f"output of shape {np.shape(raw_output)} is not [1, 4 + C, N] (boxes and class "
            f"scores along axis 1, as Ultralytics exports them)"
        )
    classes, ours = _class_arrays(class_map, raw.shape[0] - 4)
    cls_scores = raw[4 + classes, :]  # [K, N]
    best = np.argmax(cls_scores, axis=0)
    score = cls_scores[best, np.arange(raw.shape[1])]
    keep = score > score_threshold
    if not keep.any():
        return Detections.empty()
    boxes = raw[0:4, keep].T  # [M, 4] cx, cy, w, h
    # A negative size from a badly trained head must not invert a box (Detections refuses it).
    half = np.maximum(boxes[:, 2:4], 0.0) / 2
    xyxy = np.concatenate([boxes[:, 0:2] - half, boxes[:, 0:2] + half], axis=1) / np.float32(scale)
    return Detections(
        xyxy=xyxy.astype(np.float32),
        score=score[keep].astype(np.float32),
        class_id=ours[best[keep]],
    )


# --- post-processing ----------------------------------------------------------------------


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


# --- the detector -------------------------------------------------------------------------


def _fixed(dim: Any) -> int | None:
    # Dynamic axes are named by strings (or None); only ints are fixed sizes.
    return dim if isinstance(dim, int) and dim > 0 else None


def _check_output_shape(spec: ModelSpec, shape: Sequence[Any]) -> None:
    """Refuse, at load time, an output whose fixed dimensions cannot fit the spec's decoder."""
    hint = f"model {spec.ref}: output shape {list(shape)} does not fit the {spec.decoder} decoder"
    if len(shape) != 3 or _fixed(shape[0]) not in (None, 1):
        raise ModelSpecError(f"{hint} (expected a 3-d output for one image); is the decoder right?")
    highest = max(spec.model_indices)
    if spec.decoder == "yolox":
        anchors = make_grids(spec.input_hw)[0].shape[0]
        if (n := _fixed(shape[1])) is not None and n != anchors:
            raise ModelSpecError(
                f"{hint}: expected [1, {anchors}, 5 + C] for a {spec.input_size[0]}x"
                f"{spec.input_size[1]} input; is the decoder or the input size right?"
            )
        width = _fixed(shape[2])
        classes = None if width is None else width - 5
    else:
        rows = _fixed(shape[1])
        classes = None if rows is None else rows - 4
    if classes is not None and (classes < 1 or highest >= classes):
        raise ModelSpecError(
            f"{hint}: it has {max(classes, 0)} classes, the class map asks for index {highest}"
        )


class OnnxDetector:
    """A detector model on ONNX Runtime, described by a spec.

    :meth:`detect` runs one image. :meth:`detect_many` runs several (the tiles of one frame): as
    one batch when the model's batch axis is dynamic, which is where a GPU gains, else one by
    one (batching gains nothing on CPU ONNX Runtime, see DESIGN.md; to use every core, spread
    the tiles over several sessions with :class:`~activities.detect.inference.DetectorPool`).

    Args:
        model_path: the ``.onnx`` file, already verified against ``spec.sha256`` (the model
            store and the registry do that).
        spec: decoder, input size and class map.
        providers: ONNX Runtime execution providers in order of preference, each a name or a
            ``(name, options)`` pair (see :func:`~activities.detect.inference.
            execution_providers`); ``None`` uses every provider this ONNX Runtime build offers
            (CUDA/TensorRT first where present).
        intra_op_threads: threads per operator; ``None`` lets ONNX Runtime pick (all cores).
            Set it when several detectors share a machine.
        session_options: the session's options, built by :func:`~activities.detect.inference.
            session_options`; ``None`` builds them from ``intra_op_threads``. Give one or the
            other, not both.
        adopt_model_input_size: take a fixed input size from the file instead of refusing a
            file whose size differs from the spec's (what :class:`~activities.detect.yolox.
            YoloxDetector` always did).

    Raises:
        FileNotFoundError: no file at ``model_path``.
        ModelSpecError: the file's fixed input or output shape contradicts the spec.
        ValueError: both ``intra_op_threads`` and ``session_options`` were given.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        spec: ModelSpec,
        *,
        providers: Sequence[Provider] | None = None,
        intra_op_threads: int | None = None,
        session_options: ort.SessionOptions | None = None,
        adopt_model_input_size: bool = False,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        if session_options is not None and intra_op_threads is not None:
            raise ValueError("give the thread count in session_options, not intra_op_threads too")
        if session_options is None:
            options = ort.SessionOptions()
            if intra_op_threads is not None:
                options.intra_op_num_threads = int(intra_op_threads)
            # The graph is one chain of operators: inter-op parallelism has nothing to overlap.
            options.inter_op_num_threads = 1
        else:
            options = session_options
        chosen: list[Provider]
        if providers is None:
            # The Azure provider (remote inference) is listed by stock wheels but is not a
            # local device; leave it out of the default.
            chosen = [p for p in ort.get_available_providers() if p != "AzureExecutionProvider"]
        else:
            chosen = [p if isinstance(p, str) else (p[0], dict(p[1])) for p in providers]
        self._session = ort.InferenceSession(str(path), sess_options=options, providers=chosen)
        inp = self._session.get_inputs()[0]
        self._input_name: str = inp.name
        output = self._session.get_outputs()[0]
        self._output_name: str = output.name
        shape = inp.shape
        # A named (or absent) batch axis takes any batch; the exports we bundle fix it to 1.
        self.batched: bool = len(shape) == 4 and _fixed(shape[0]) is None
        fixed_hw = (_fixed(shape[2]), _fixed(shape[3])) if len(shape) == 4 else (None, None)
        h, w = fixed_hw
        if h is not None and w is not None and (h, w) != spec.input_hw:
            if not adopt_model_input_size:
                raise ModelSpecError(
                    f"model {spec.ref}: the ONNX file's input is {w}x{h}, its spec says "
                    f"{spec.input_size[0]}x{spec.input_size[1]}"
                )
            spec = replace(spec, input_size=(w, h))
        _check_output_shape(spec, output.shape)
        self.spec: ModelSpec = spec
        self.input_hw: tuple[int, int] = spec.input_hw
        self._convention = INPUT_CONVENTIONS[spec.decoder]
        self._grids = make_grids(self.input_hw) if spec.decoder == "yolox" else None

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually uses."""
        return list(self._session.get_providers())

    def preprocess(self, image_bgr: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float32], float]:
        """See :func:`preprocess`; uses this model's input size and convention."""
        return preprocess(image_bgr, self.input_hw, self._convention)

    def decode(
        self, raw_output: npt.NDArray[np.float32], scale: float, score_threshold: float
    ) -> Detections:
        """Decode with this model's decoder, input size and class map (our class ids out)."""
        if self.spec.decoder == "yolox":
            return decode_yolox(
                raw_output,
                scale,
                score_threshold,
                input_hw=self.input_hw,
                class_map=self.spec.class_map,
                grids=self._grids,
            )
        return decode_yolov8(raw_output, scale, score_threshold, class_map=self.spec.class_map)

    def infer(self, tensor: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Run the network on a preprocessed ``[B, 3, h, w]`` tensor; returns its first output.

        ``B`` is 1 unless the model's batch axis is dynamic (:attr:`batched`).
        """
        out = self._session.run([self._output_name], {self._input_name: tensor})[0]
        return np.asarray(out, dtype=np.float32)

    def detect(
        self,
        image_bgr: npt.NDArray[np.uint8],
        score_threshold: float = 0.3,
        nms_iou: float = 0.45,
    ) -> Detections:
        """Detect our classes in one image, letterboxed to the model's input size.

        Args:
            image_bgr: ``[H, W, 3]`` uint8 BGR image (any size; downscaled when larger than
                the input, so small players vanish on a whole 4K frame: tile instead).
            score_threshold: minimum score (objectness times class score for YOLOX).
            nms_iou: class-wise NMS IoU threshold.

        Returns:
            Boxes in ``image_bgr`` pixels with our class ids, clipped to the image, highest
            score first.
        """
        tensor, scale = self.preprocess(image_bgr)
        found = self.decode(self.infer(tensor), scale, score_threshold)
        h, w = image_bgr.shape[:2]
        return nms(clip_to_image(found, w, h), nms_iou)

    def detect_many(
        self,
        images: Sequence[npt.NDArray[np.uint8]],
        *,
        score_threshold: float = 0.3,
        nms_iou: float = 0.45,
    ) -> list[Detections]:
        """Detect in several images (the tiles of one frame), each as :meth:`detect` would.

        With a dynamic batch axis (:attr:`batched`) all images go through the network as one
        batch: one launch instead of one per tile, which is what a GPU gains from. Otherwise
        they run one by one.

        Args:
            images: ``[H, W, 3]`` uint8 BGR images, of any sizes.
            score_threshold: minimum score (objectness times class score for YOLOX).
            nms_iou: class-wise NMS IoU threshold.

        Returns:
            One :class:`Detections` per image, in order, in that image's pixels.
        """
        if not self.batched or len(images) < 2:
            return [
                self.detect(image, score_threshold=score_threshold, nms_iou=nms_iou)
                for image in images
            ]
        prepared = [self.preprocess(image) for image in images]
        raw = self.infer(np.concatenate([tensor for tensor, _ in prepared]))
        if raw.shape[0] != len(images):
            raise ValueError(f"a batch of {len(images)} images gave {raw.shape[0]} outputs")
        results = []
        for row, (_, scale), image in zip(raw, prepared, images, strict=True):
            found = self.decode(row, scale, score_threshold)
            h, w = image.shape[:2]
            results.append(nms(clip_to_image(found, w, h), nms_iou))
        return results


def check_model_file(spec: ModelSpec, path: Path) -> None:
    """Load a model and run it once on a grey image, so a wrong spec fails when it is added.

    Catches what the static shape check cannot: dynamic output axes whose real sizes do not
    fit the decoder or the class map.

    Raises:
        ModelSpecError: ONNX Runtime cannot load the file, or its output does not decode.
    """
    try:
        detector = OnnxDetector(path, spec, providers=["CPUExecutionProvider"])
    except ModelSpecError:
        raise
    except Exception as exc:  # ONNX Runtime raises its own exception types for a bad file
        raise ModelSpecError(f"ONNX Runtime cannot load {path}: {exc}") from exc
    height, width = spec.input_hw
    grey = np.full((height, width, 3), PAD_VALUE, np.uint8)
    tensor, scale = detector.preprocess(grey)
    try:
        raw = detector.infer(tensor)
    except Exception as exc:  # e.g. a float16 input: ONNX Runtime's own exception types
        raise ModelSpecError(f"model {spec.ref}: ONNX Runtime cannot run it: {exc}") from exc
    try:
        # Threshold -1: every box is decoded, so a layout that only fails on survivors shows.
        detector.decode(raw, scale, -1.0)
    except ValueError as exc:
        raise ModelSpecError(f"model {spec.ref}: its output does not decode: {exc}") from exc
