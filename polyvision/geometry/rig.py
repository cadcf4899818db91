"""The camera rig of a match and its ``rig.json`` file: versioned and validated on load.

The stitch stage reads ``rig.json`` (written by `Rig.save`) to know where each camera is; the
API validates the one an edge box uploads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from polyvision.geometry.camera import CameraModel, RigError

RIG_VERSION = 1
RIG_FRAME = (
    "pitch frame: metres; origin at the corner of the near touchline and the left goal line; "
    "x along the near touchline (0..length), y towards the far touchline (0..width), z up; "
    "cameras beyond the near touchline (y < 0); pose is OpenCV's, "
    "x_cam = Rodrigues(rvec) @ X_world + tvec"
)


@dataclass(frozen=True)
class Rig:
    """The cameras filming the pitch, as stored in ``rig.json``.

    Attributes:
        version: Format version of ``rig.json``; only `RIG_VERSION` is understood.
        pitch_length_m: Length of the pitch along ``x``.
        pitch_width_m: Width of the pitch along ``y``.
        cameras: The cameras by name; a match rig has "left" and "right".
    """

    version: int
    pitch_length_m: float
    pitch_width_m: float
    cameras: dict[str, CameraModel]

    def __post_init__(self) -> None:
        if self.version != RIG_VERSION:
            raise RigError(f"unknown rig version {self.version!r} (expected {RIG_VERSION})")
        if not (self.pitch_length_m > 0 and self.pitch_width_m > 0):
            raise RigError("pitch dimensions must be positive")
        for required in ("left", "right"):
            if required not in self.cameras:
                raise RigError(f"rig has no {required!r} camera")
        for key, camera in self.cameras.items():
            if camera.name != key:
                raise RigError(f"camera keyed {key!r} is named {camera.name!r}")

    def to_json(self) -> str:
        """The rig as the text of ``rig.json``."""
        document = {
            "version": self.version,
            "frame": RIG_FRAME,
            "pitch_length_m": self.pitch_length_m,
            "pitch_width_m": self.pitch_width_m,
            "cameras": {name: camera.to_dict() for name, camera in self.cameras.items()},
        }
        return json.dumps(document, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Rig:
        """Parse and validate the text of ``rig.json``.

        Raises:
            RigError: The text is not JSON, a field is missing or malformed, or the version is
                unknown.
        """
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise RigError(f"rig.json is not valid JSON: {error}") from error
        if not isinstance(document, dict):
            raise RigError("rig.json must hold an object")
        missing = [
            key
            for key in ("version", "frame", "pitch_length_m", "pitch_width_m", "cameras")
            if key not in document
        ]
        if missing:
            raise RigError(f"rig.json: missing field(s) {', '.join(missing)}")
        # Check the version before anything else so a future format fails with a clear message.
        version = document["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version != RIG_VERSION:
            raise RigError(f"unknown rig version {version!r} (expected {RIG_VERSION})")
        cameras = document["cameras"]
        if not isinstance(cameras, dict):
            raise RigError("rig.json: cameras must be an object keyed by camera name")
        try:
            length = float(document["pitch_length_m"])
            width = float(document["pitch_width_m"])
        except (TypeError, ValueError) as error:
            raise RigError("rig.json: pitch dimensions must be numbers") from error
        return cls(
            version=version,
            pitch_length_m=length,
            pitch_width_m=width,
            cameras={name: CameraModel.from_dict(name, data) for name, data in cameras.items()},
        )

    def save(self, path: str | Path) -> None:
        """Write ``rig.json`` to ``path``."""
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Rig:
        """Read and validate ``rig.json`` from ``path``.

        Raises:
            RigError: The file's content is malformed (see `from_json`).
        """
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
