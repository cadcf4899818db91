"""The one data type for tracked objects in a frame, the output of the track stage.

Like :class:`~activities.detect.detections.Detections` (and supervision's ``Detections`` with a
``tracker_id``): a dataclass of parallel numpy arrays, validated once in ``__post_init__`` so
that the pitch projection and analytics can trust shapes, dtypes and identities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Tracks", "foot_points"]


@dataclass(frozen=True, eq=False)
class Tracks:
    """The confirmed tracks visible in one frame.

    Attributes:
        track_id: int32 ``[M]`` identities, ``>= 1``, unique within the frame; an identity is
            never given to a second object.
        xyxy: float32 ``[M, 4]`` boxes ``x1, y1, x2, y2`` in pixels (the tracker's filtered
            estimate), with ``x2 >= x1`` and ``y2 >= y1``.
        score: float32 ``[M]`` confidence of the detection matched to each track in this frame;
            0 where the box is the tracker's prediction through a short miss.
        class_id: int16 ``[M]`` COCO class ids.

    Inputs of another dtype are converted; invalid shapes, non-finite values, inverted boxes
    or repeated identities raise ``ValueError``.
    """

    track_id: npt.NDArray[np.int32]
    xyxy: npt.NDArray[np.float32]
    score: npt.NDArray[np.float32]
    class_id: npt.NDArray[np.int16]

    def __post_init__(self) -> None:
        # frozen=True forbids plain assignment; object.__setattr__ is the documented way for a
        # frozen dataclass to normalise its own fields during construction.
        track_id = np.asarray(self.track_id)
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        score = np.asarray(self.score, dtype=np.float32)
        class_id = np.asarray(self.class_id)
        if xyxy.size == 0 and xyxy.shape != (0, 4):
            xyxy = xyxy.reshape(0, 4)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape [M, 4], got {xyxy.shape}")
        m = xyxy.shape[0]
        for name, arr in (("track_id", track_id), ("score", score), ("class_id", class_id)):
            if arr.shape != (m,):
                raise ValueError(f"{name} must have shape [{m}], got {arr.shape}")
        # Casting changes fractional or out-of-range values, which is how both are caught.
        track_id32 = track_id.astype(np.int32)
        if not np.array_equal(track_id32, track_id):
            raise ValueError("track_id must hold integers that fit in int32")
        class_id16 = class_id.astype(np.int16)
        if not np.array_equal(class_id16, class_id):
            raise ValueError("class_id must hold integers that fit in int16")
        if np.any(track_id32 < 1):
            raise ValueError("track_id must be >= 1")
        if len(np.unique(track_id32)) != m:
            raise ValueError("track_id must be unique within a frame")
        if not np.isfinite(xyxy).all() or not np.isfinite(score).all():
            raise ValueError("xyxy and score must be finite")
        if np.any(xyxy[:, 2] < xyxy[:, 0]) or np.any(xyxy[:, 3] < xyxy[:, 1]):
            raise ValueError("boxes must satisfy x2 >= x1 and y2 >= y1")
        object.__setattr__(self, "track_id", track_id32)
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "class_id", class_id16)

    def __len__(self) -> int:
        """Number of tracks."""
        return int(self.xyxy.shape[0])

    @classmethod
    def from_arrays(
        cls,
        track_id: npt.ArrayLike,
        xyxy: npt.ArrayLike,
        score: npt.ArrayLike,
        class_id: npt.ArrayLike,
    ) -> Tracks:
        """Build from any array-likes (lists, other dtypes); converted and validated."""
        return cls(
            # No dtype for the ids: a fractional id must reach validation, not be truncated.
            track_id=np.asarray(track_id),
            xyxy=np.asarray(xyxy, dtype=np.float32),
            score=np.asarray(score, dtype=np.float32),
            class_id=np.asarray(class_id),
        )

    @classmethod
    def empty(cls) -> Tracks:
        """Tracks with no boxes."""
        return cls(
            track_id=np.zeros(0, np.int32),
            xyxy=np.zeros((0, 4), np.float32),
            score=np.zeros(0, np.float32),
            class_id=np.zeros(0, np.int16),
        )

    def foot_points(self) -> npt.NDArray[np.float32]:
        """Bottom-centre of each box, float32 ``[M, 2]`` (see :func:`foot_points`)."""
        return foot_points(self.xyxy)


def foot_points(xyxy: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Bottom-centre of each box: where a standing person touches the pitch.

    This is the point the homography maps to pitch metres; the box centre would sit about a
    metre above the ground and project too far from the camera.

    Args:
        xyxy: ``[N, 4]`` boxes ``x1, y1, x2, y2``.

    Returns:
        float32 ``[N, 2]`` points ``((x1 + x2) / 2, y2)``.
    """
    boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) * 0.5, boxes[:, 3]], axis=1)
