"""What a detector model is, independent of its bytes: decoder, input size, class map, digest.

A :class:`ModelSpec` is everything the backend (:mod:`activities.detect.backend`) needs besides
the ONNX file to turn a network's output into our :class:`~activities.detect.detections.Detections`:
which output layout to decode (``yolox`` raw grid heads or ``yolov8``-style ``[1, 4 + C, N]``),
the input size the boxes are measured in, and which of the model's classes are our person and
ball. Registry rows (:mod:`activities.detect.registry`) and the bundled YOLOX-nano are both
described by one, so the stage never special-cases a model.

Light on purpose (standard library and the ``Detections`` class ids): the CLI parses and prints
specs without loading ONNX Runtime.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, get_args

from activities.detect.detections import Detections
from activities.detect.model_store import YOLOX_NANO_NAME, YOLOX_NANO_SHA256, ModelStoreError

__all__ = [
    "BUNDLED_FILE",
    "BUNDLED_SPEC",
    "DECODERS",
    "OUR_CLASSES",
    "ClassMap",
    "Decoder",
    "ModelSpec",
    "ModelSpecError",
    "class_name",
    "format_class_map",
    "parse_class_map",
    "parse_input_size",
    "parse_model_ref",
]

Decoder = Literal["yolox", "yolov8"]
DECODERS: Final[tuple[Decoder, ...]] = get_args(Decoder)

OUR_CLASSES: Final[Mapping[str, int]] = {
    "person": Detections.PERSON,
    "ball": Detections.SPORTS_BALL,
}
"""Our class names and the class ids every stage after detection reads (COCO's numbering)."""

_NAME_OF_CLASS: Final[Mapping[int, str]] = {v: k for k, v in OUR_CLASSES.items()}

ClassMap = tuple[tuple[int, int], ...]
"""``((model class index, our class id), ...)`` sorted by model index; several model classes may
map to one of ours (a model with "player", "goalkeeper" and "referee" classes: all persons)."""

# Names and versions become object-key and cache-path segments: no slashes, no dot-only names.
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ModelSpecError(ModelStoreError):
    """A model file does not fit its spec (input size, output layout, class indices)."""


def _check_segment(what: str, value: str) -> str:
    if not _SEGMENT.match(value):
        raise ValueError(
            f"model {what} {value!r} must be 1-64 letters, digits, '.', '_' or '-', starting "
            f"with a letter or digit"
        )
    return value


@dataclass(frozen=True)
class ModelSpec:
    """A detector model as the backend needs it.

    Attributes:
        name: registry name, e.g. ``yolov8s-football``.
        version: registry version, e.g. ``2``.
        decoder: output layout, ``yolox`` or ``yolov8`` (it also fixes the input convention,
            see :data:`activities.detect.backend.INPUT_CONVENTIONS`).
        input_size: the network's input ``(width, height)`` in pixels.
        class_map: model class index to our class id, see :data:`ClassMap`.
        sha256: hex digest of the ONNX file, checked on every load.
        format: file format; only ``onnx`` is served.
    """

    name: str
    version: str
    decoder: Decoder
    input_size: tuple[int, int]
    class_map: ClassMap
    sha256: str
    format: str = "onnx"

    def __post_init__(self) -> None:
        _check_segment("name", self.name)
        _check_segment("version", self.version)
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        if self.format != "onnx":
            raise ValueError(f"only onnx models are served, got format {self.format!r}")
        width, height = self.input_size
        if width <= 0 or height <= 0:
            raise ValueError(f"input size must be positive, got {width}x{height}")
        if self.decoder == "yolox" and (width % 32 or height % 32):
            # The stride-32 grid must tile the input exactly, or rows and anchors disagree.
            raise ValueError(f"a yolox input size must be a multiple of 32, got {width}x{height}")
        if not self.class_map:
            raise ValueError("the class map is empty: map at least one model class to ours")
        indices = [index for index, _ in self.class_map]
        if len(set(indices)) != len(indices) or min(indices) < 0:
            raise ValueError(f"model class indices must be distinct and >= 0, got {indices}")
        # Registry rows only ever hold OUR_CLASSES (parse_class_map refuses others); any COCO
        # id is allowed here so YoloxDetector(class_ids=...) keeps reporting what it was asked.
        if not all(0 <= ours < 2**15 for _, ours in self.class_map):
            raise ValueError(f"our class ids must fit in int16 and be >= 0, got {self.class_map}")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"sha256 must be 64 lower-case hex digits, got {self.sha256!r}")
        object.__setattr__(self, "class_map", tuple(sorted(self.class_map)))

    @property
    def input_hw(self) -> tuple[int, int]:
        """The input as ``(height, width)``, numpy's order."""
        return self.input_size[1], self.input_size[0]

    @property
    def ref(self) -> str:
        """``name:version``, as ``--model`` takes it."""
        return f"{self.name}:{self.version}"

    @property
    def model_indices(self) -> tuple[int, ...]:
        """The model's class indices that are kept, in class-map order."""
        return tuple(index for index, _ in self.class_map)

    @property
    def our_ids(self) -> tuple[int, ...]:
        """Our class id of each of :attr:`model_indices`."""
        return tuple(ours for _, ours in self.class_map)


BUNDLED_SPEC: Final = ModelSpec(
    name="yolox-nano",
    version="bundled",
    decoder="yolox",
    input_size=(416, 416),
    class_map=((Detections.PERSON, Detections.PERSON), (32, Detections.SPORTS_BALL)),
    sha256=YOLOX_NANO_SHA256,
)
"""The YOLOX-nano COCO export found as ``yolox_nano.onnx`` in ``PV_MODELS_DIR`` when the
registry has no default: COCO's person (0) and sports ball (32) are already our ids."""

BUNDLED_FILE: Final = YOLOX_NANO_NAME


def parse_class_map(text: str) -> ClassMap:
    """Read ``person=0,ball=32`` (a class may repeat: ``person=0,person=2,ball=1``).

    Raises:
        ValueError: an entry that is not ``NAME=INDEX``, a name that is not ours, or a model
            index given twice.
    """
    pairs: list[tuple[int, int]] = []
    for entry in (part.strip() for part in text.split(",")):
        name, sep, index = entry.partition("=")
        name, index = name.strip().lower(), index.strip()
        if not sep or not index.isdigit():
            raise ValueError(f"class map entry {entry!r} is not NAME=INDEX (e.g. person=0)")
        if name not in OUR_CLASSES:
            raise ValueError(f"class {name!r} is not one of ours: {', '.join(OUR_CLASSES)}")
        pairs.append((int(index), OUR_CLASSES[name]))
    indices = [index for index, _ in pairs]
    if len(set(indices)) != len(indices):
        raise ValueError(f"class map {text!r} gives a model index twice")
    return tuple(sorted(pairs))


def format_class_map(class_map: Iterable[tuple[int, int]]) -> str:
    """The inverse of :func:`parse_class_map`, ordered by model index."""
    return ",".join(f"{_NAME_OF_CLASS[ours]}={index}" for index, ours in sorted(class_map))


def class_name(class_id: int) -> str:
    """Our name of one of our class ids (``person``, ``ball``)."""
    return _NAME_OF_CLASS.get(class_id, str(class_id))


def parse_input_size(text: str) -> tuple[int, int]:
    """Read ``640`` (square) or ``WIDTHxHEIGHT`` (``640x384``) as ``(width, height)``.

    Raises:
        ValueError: not one or two positive integers.
    """
    width, sep, height = text.lower().partition("x")
    if not sep:
        height = width
    if not (width.strip().isdigit() and height.strip().isdigit()):
        raise ValueError(f"input size {text!r} is not WIDTHxHEIGHT or one number (e.g. 640x640)")
    size = int(width), int(height)
    if min(size) <= 0:
        raise ValueError(f"input size {text!r} must be positive")
    return size


def parse_model_ref(text: str) -> tuple[str, str | None]:
    """Read ``NAME`` or ``NAME:VERSION`` (no version: the newest registered one).

    Raises:
        ValueError: a name or version the registry could not hold.
    """
    name, sep, version = text.partition(":")
    _check_segment("name", name)
    if sep:
        _check_segment("version", version)
        return name, version
    return name, None
