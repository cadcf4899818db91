"""Tiny real ONNX models for tests: a graph whose output is a constant tensor we choose.

ONNX Runtime loads and runs them like any export, so the backend, the registry and the CLI are
tested end to end without a trained network or the ``onnx`` package: the ``ModelProto`` is
written directly in protobuf's wire format (field numbers from ``onnx/onnx.proto``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

IR_VERSION = 8
OPSET = 13
FLOAT = 1  # TensorProto.DataType.FLOAT


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _str(field: int, text: str) -> bytes:
    return _bytes(field, text.encode())


def _value_info(name: str, shape: Sequence[int | str]) -> bytes:
    # ValueInfoProto{name=1, type=2}; TypeProto{tensor_type=1}; Tensor{elem_type=1, shape=2};
    # TensorShapeProto{dim=1}; Dimension{dim_value=1, dim_param=2}.
    dims = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _str(2, d)) for d in shape)
    tensor_type = _int(1, FLOAT) + _bytes(2, dims)
    return _str(1, name) + _bytes(2, _bytes(1, tensor_type))


def _tensor(name: str, array: np.ndarray) -> bytes:
    # TensorProto{dims=1, data_type=2, name=8, raw_data=9 (little-endian)}.
    data = np.ascontiguousarray(array, dtype="<f4")
    dims = b"".join(_int(1, d) for d in data.shape)
    return dims + _int(2, FLOAT) + _str(8, name) + _bytes(9, data.tobytes())


def constant_model_bytes(
    output: np.ndarray,
    input_hw: tuple[int, int],
    *,
    input_name: str = "images",
) -> bytes:
    """An ONNX model taking ``[1, 3, h, w]`` float32 and returning ``output`` whatever the input.

    Args:
        output: the constant float32 output, e.g. ``[1, 4 + C, N]`` for a YOLOv8-style head.
        input_hw: the declared input ``(height, width)``.
        input_name: the input's name.
    """
    h, w = input_hw
    node = _str(1, "head") + _str(2, "output") + _str(3, "identity") + _str(4, "Identity")
    graph = (
        _bytes(1, node)
        + _str(2, "constant-head")
        + _bytes(5, _tensor("head", output))
        + _bytes(11, _value_info(input_name, [1, 3, h, w]))
        + _bytes(12, _value_info("output", list(output.shape)))
    )
    opset = _str(1, "") + _int(2, OPSET)
    return _int(1, IR_VERSION) + _str(2, "polyvision-tests") + _bytes(7, graph) + _bytes(8, opset)


def write_constant_model(
    path: Path,
    output: np.ndarray,
    input_hw: tuple[int, int],
) -> Path:
    """Write :func:`constant_model_bytes` to ``path``; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(constant_model_bytes(output, input_hw))
    return path


def yolov8_output(
    boxes: Sequence[tuple[float, float, float, float]],
    scores: Sequence[Sequence[float]],
    n_classes: int,
    n_anchors: int,
) -> np.ndarray:
    """A ``[1, 4 + C, N]`` head: the given ``cx, cy, w, h`` boxes and per-class scores first,
    zero rows (score 0) after."""
    out = np.zeros((1, 4 + n_classes, n_anchors), np.float32)
    for i, (box, score) in enumerate(zip(boxes, scores, strict=True)):
        out[0, 0:4, i] = box
        out[0, 4 : 4 + len(score), i] = score
    return out
