"""YOLOX (Megvii, Apache-2.0) on ONNX Runtime: the bundled detector's names, kept importable.

The ONNX export we bundle (``yolox_nano.onnx``, see ``../shared/data/README.md``) outputs raw
head values, ``[1, A, 85]`` = ``cx, cy, w, h, objectness, 80 class scores`` over the anchor-free
grids of strides 8, 16 and 32. Everything model-independent now lives in
:mod:`activities.detect.backend` (letterbox, decoders, NMS, :class:`OnnxDetector`); this module
keeps the YOLOX-flavoured entry points that benches, tests and the tiling code import:
:func:`preprocess` and :func:`decode` with YOLOX's conventions, and :class:`YoloxDetector`, an
:class:`OnnxDetector` with the bundled YOLOX spec.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from activities.detect.backend import (
    PAD_VALUE,
    STRIDES,
    YOLOX_INPUT,
    OnnxDetector,
    clip_to_image,
    decode_yolox,
    make_grids,
    nms,
)
from activities.detect.backend import preprocess as _preprocess
from activities.detect.detections import Detections
from activities.detect.model_spec import BUNDLED_SPEC

__all__ = [
    "DEFAULT_CLASS_IDS",
    "PAD_VALUE",
    "STRIDES",
    "YoloxDetector",
    "clip_to_image",
    "decode",
    "make_grids",
    "nms",
    "preprocess",
]

DEFAULT_CLASS_IDS: tuple[int, ...] = (Detections.PERSON, Detections.SPORTS_BALL)
_FALLBACK_INPUT_HW = BUNDLED_SPEC.input_hw


def preprocess(
    image_bgr: npt.NDArray[np.uint8], input_hw: tuple[int, int] = _FALLBACK_INPUT_HW
) -> tuple[npt.NDArray[np.float32], float]:
    """Letterbox an image into the model's input tensor, the way YOLOX was trained.

    The image is resized keeping its aspect ratio so that it fits ``input_hw``, pasted at the
    top-left of a canvas filled with 114, and returned as raw 0-255 BGR float32 in NCHW (the
    export has no mean/std normalisation).

    Returns:
        ``(tensor, scale)``: the ``[1, 3, h, w]`` float32 tensor and the factor that maps image
        pixels to tensor pixels (divide decoded boxes by it to return to the image).
    """
    return _preprocess(image_bgr, input_hw, YOLOX_INPUT)


def decode(
    raw_output: npt.NDArray[np.float32],
    scale: float,
    score_threshold: float,
    *,
    input_hw: tuple[int, int] = _FALLBACK_INPUT_HW,
    class_ids: Iterable[int] = DEFAULT_CLASS_IDS,
    grids: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None,
) -> Detections:
    """:func:`~activities.detect.backend.decode_yolox` reporting COCO ids as they are.

    Args:
        raw_output: ``[1, A, 5 + C]`` or ``[A, 5 + C]`` head output.
        scale: the factor :func:`preprocess` returned; boxes are divided by it.
        score_threshold: keep boxes scoring strictly above this.
        input_hw: the model's input ``(height, width)``, which fixes the grids.
        class_ids: the COCO classes to keep (each reported as itself).
        grids: precomputed :func:`make_grids` output, to save rebuilding it per call.
    """
    identity = [(int(c), int(c)) for c in class_ids]
    return decode_yolox(
        raw_output, scale, score_threshold, input_hw=input_hw, class_map=identity, grids=grids
    )


class YoloxDetector(OnnxDetector):
    """A YOLOX COCO export on ONNX Runtime: an :class:`OnnxDetector` with the bundled spec.

    The input size is read from the file (416 where its axes are dynamic), so any YOLOX COCO
    export works, as before the backend existed.

    Args:
        model_path: the ``.onnx`` file (see :func:`activities.detect.model_store.resolve_model`).
        providers: ONNX Runtime execution providers in order of preference; ``None`` uses every
            provider this ONNX Runtime build offers (CUDA/TensorRT first where present).
        intra_op_threads: threads per operator; ``None`` lets ONNX Runtime pick (all cores).
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
        self.class_ids: tuple[int, ...] = tuple(int(c) for c in class_ids)
        spec = replace(BUNDLED_SPEC, class_map=tuple((c, c) for c in self.class_ids))
        super().__init__(
            model_path,
            spec,
            providers=providers,
            intra_op_threads=intra_op_threads,
            adopt_model_input_size=True,
        )
