"""INT8 versions of a detector model, calibrated on our own tiles (ONNX Runtime quantization).

Two ways, both from :mod:`onnxruntime.quantization`:

- **static** (the default): weights *and* activations in 8 bits, in the QDQ format
  (``QuantizeLinear``/``DequantizeLinear`` pairs around each operator, which ONNX Runtime's CPU
  provider fuses into ``QLinearConv`` and friends at load time). The activation ranges come
  from running the float model on calibration tiles: letterboxed exactly as the detector
  letterboxes them (:func:`activities.detect.backend.preprocess`; for YOLOX, BGR 0-255 float
  ``[1, 3, 416, 416]``), so the ranges are those of the data the model will see. Weights are
  signed 8-bit per output channel, activations unsigned 8-bit (ONNX Runtime's advice for x86
  CPUs; ``reduce_range`` quantizes weights to 7 bits for CPUs without VNNI).
- **dynamic**: weights only, activations quantized on the fly per call (``ConvInteger``): no
  calibration, but on a convolutional network it is slower than the float model on CPU
  (``bench/detect_int8.py``).

The output head stays in float (``float_head``): the last convolution of each branch and what
follows it (the sigmoids, concatenations, reshapes and transpose up to the output). A YOLOX
output concatenates box offsets (a few units, negative too) with objectness and class scores
in ``[0, 1]``: one 8-bit scale over both would leave the scores with steps of several
hundredths, too coarse for a 0.2 threshold on a 10-px player.

Steps, as ONNX Runtime's quantization guide lays them out: bring the model to opset 13
(per-channel ``DequantizeLinear`` needs its ``axis``), pre-process it (ONNX shape inference and
ONNX Runtime's basic graph optimizations: ``quant_pre_process``; the symbolic shape inference
is for transformers and is skipped), then quantize.

Measured (``bench/detect_int8.py``, 39 held-out SoccerTrack-v2 panoramas, pitch scope): the
static INT8 YOLOX-nano keeps 0.15 person recall against the float model's 0.69 and finds no
ball, at the same CPU per tile (one thread, AVX-512 VNNI); the dynamic one finds nothing and
costs 1.9 times the CPU. The cause is the network, not the calibration: after its first
convolutions a single activation tensor holds channels whose ranges differ 600-fold (0.15 to
95), so one 8-bit scale per tensor (all ONNX Runtime offers for activations) zeroes the small
channels; and the int8 convolutions' gain is eaten by the SiLUs, which run as two quantized
operators (``QLinearSigmoid``, ``QLinearMul``) instead of one fused float one. Do not deploy it.

Needs the ``onnx`` package (ONNX Runtime's quantization tools import it); it is imported when
a model is quantized, so importing this module does not need it.
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from activities.detect.backend import INPUT_CONVENTIONS, preprocess
from activities.detect.model_spec import ModelSpec

__all__ = [
    "DEFAULT_SETTINGS",
    "QuantSettings",
    "QuantizeError",
    "TileCalibrationReader",
    "output_head_nodes",
    "quantize_model",
]

QuantMode = Literal["static", "dynamic"]
CalibrationName = Literal["minmax", "entropy", "percentile"]

_OPSET: Final = 13  # per-channel (axis) QuantizeLinear/DequantizeLinear need opset 13


class QuantizeError(RuntimeError):
    """A model cannot be quantized (no calibration tiles, no ``onnx`` package, a bad file)."""


@dataclass(frozen=True)
class QuantSettings:
    """How to quantize.

    Attributes:
        mode: ``static`` (weights and activations, calibrated) or ``dynamic`` (weights only).
        per_channel: one weight scale per output channel (else one per tensor).
        reduce_range: 7-bit weights, against overflow on x86 CPUs without VNNI.
        calibration: how activation ranges are read off the calibration tiles: ``minmax``
            (the observed extremes), ``percentile`` (99.999th percentile of the absolute
            values) or ``entropy`` (KL divergence); ``static`` only.
        float_head: keep the output head (last convolutions and everything after them) float.
    """

    mode: QuantMode = "static"
    per_channel: bool = True
    reduce_range: bool = False
    calibration: CalibrationName = "minmax"
    float_head: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("static", "dynamic"):
            raise ValueError(f"mode must be static or dynamic, got {self.mode!r}")
        if self.calibration not in ("minmax", "entropy", "percentile"):
            raise ValueError(
                f"calibration must be minmax, entropy or percentile, got {self.calibration!r}"
            )


DEFAULT_SETTINGS: Final = QuantSettings()


class TileCalibrationReader:
    """Feeds calibration tiles to ONNX Runtime's calibrator, letterboxed as the detector does.

    ONNX Runtime's ``CalibrationDataReader`` is an abstract class whose ``__subclasshook__``
    accepts any class with ``get_next``; this one needs no import of it.

    Args:
        tiles: ``[H, W, 3]`` uint8 BGR images (tiles as the detector gets them; any size:
            each is letterboxed to the model's input).
        spec: the model's spec (input size and input convention).
        input_name: the model's input name.
    """

    def __init__(
        self, tiles: Sequence[npt.NDArray[np.uint8]], spec: ModelSpec, input_name: str
    ) -> None:
        self._tiles = list(tiles)
        self._spec = spec
        self._input_name = input_name
        self._start, self._end = 0, len(self._tiles)
        self._iter: Iterator[npt.NDArray[np.uint8]] = iter(self._tiles)

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        """The next tile as ``{input name: [1, 3, h, w] float32}``, or None when done."""
        tile = next(self._iter, None)
        if tile is None:
            return None
        tensor, _ = preprocess(tile, self._spec.input_hw, INPUT_CONVENTIONS[self._spec.decoder])
        return {self._input_name: tensor}

    def __len__(self) -> int:
        return len(self._tiles)

    def set_range(self, start_index: int, end_index: int) -> None:
        """Restrict the reader to tiles ``start_index .. end_index`` (the strided calibration)."""
        self._start, self._end = start_index, end_index
        self._iter = iter(self._tiles[start_index:end_index])

    def rewind(self) -> None:
        """Start again from the first tile of the current range."""
        self._iter = iter(self._tiles[self._start : self._end])


def _onnx() -> Any:
    """The ``onnx`` package, which ONNX Runtime's quantization tools need."""
    try:
        return importlib.import_module("onnx")
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise QuantizeError(
            "quantizing a model needs the onnx package (pip install onnx): ONNX Runtime's "
            "quantization tools are built on it"
        ) from exc


def output_head_nodes(model: Any) -> list[str]:
    """Names of the nodes from the graph's outputs back to the last convolution on each path.

    For YOLOX: the nine prediction convolutions (box, objectness and class, per stride), the
    sigmoids and concatenations after them, the reshapes and the final transpose.

    Args:
        model: an ``onnx.ModelProto``.
    """
    producer = {out: node for node in model.graph.node for out in node.output}
    head: dict[str, None] = {}  # ordered set
    stack = [output.name for output in model.graph.output]
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in head:
            continue
        head[node.name] = None
        if node.op_type != "Conv":
            stack.extend(node.input)
    return list(head)


def _input_name(model: Any) -> str:
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise QuantizeError(f"expected a model with one image input, got {inputs}")
    return str(inputs[0])


def quantize_model(
    src: Path,
    dst: Path,
    calibration_tiles: Sequence[npt.NDArray[np.uint8]],
    spec: ModelSpec,
    settings: QuantSettings = DEFAULT_SETTINGS,
) -> Path:
    """Write an INT8 version of the ONNX model ``src`` to ``dst``.

    Args:
        src: the float ``.onnx`` file.
        dst: where to write the quantized model (its folder is created).
        calibration_tiles: ``[H, W, 3]`` uint8 BGR tiles, as the detector gets them (cropped
            and resized by the tiling, not yet letterboxed); a few dozen from frames of the
            camera the model will run on. Unused by ``dynamic`` quantization.
        spec: the model's spec: input size and input convention for the letterbox.
        settings: see :class:`QuantSettings`.

    Returns:
        ``dst``.

    Raises:
        QuantizeError: static quantization without calibration tiles, no ``onnx`` package,
            or a model without exactly one image input.
    """
    if settings.mode == "static" and not calibration_tiles:
        raise QuantizeError("static quantization needs at least one calibration tile")
    onnx = _onnx()
    # Imported here: ONNX Runtime's quantization package imports onnx at its own import.
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pv-quantize-") as tmp:
        model = onnx.load(str(src))
        opset = max(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0
        )
        upgraded = Path(tmp) / "opset.onnx"
        if opset < _OPSET:
            model = onnx.version_converter.convert_version(model, _OPSET)
        onnx.save(model, str(upgraded))
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(upgraded), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        exclude = output_head_nodes(model) if settings.float_head else []
        if settings.mode == "dynamic":
            # ConvInteger takes unsigned 8-bit weights only.
            quantize_dynamic(
                str(prepared),
                str(dst),
                per_channel=settings.per_channel,
                reduce_range=settings.reduce_range,
                weight_type=QuantType.QUInt8,
                nodes_to_exclude=exclude,
            )
            return dst
        method = {
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }[settings.calibration]
        reader = TileCalibrationReader(calibration_tiles, spec, _input_name(model))
        quantize_static(
            str(prepared),
            str(dst),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=settings.per_channel,
            reduce_range=settings.reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
            calibrate_method=method,
            calibration_providers=["CPUExecutionProvider"],
            # Bounds the calibrator's memory: ranges are merged every 16 tiles.
            extra_options={"CalibMaxIntermediateOutputs": 16},
        )
    return dst
