"""The one data type for object detections that every detection-consuming stage passes around.

Modelled on supervision's ``Detections``: a dataclass of parallel numpy arrays, validated once
in ``__post_init__`` so that downstream code (tiling merge, tracking, analytics) can trust
shapes, dtypes and finiteness without re-checking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

__all__ = ["Detections"]


@dataclass(frozen=True, eq=False)
class Detections:
    """Axis-aligned boxes with a confidence and a COCO class id each.

    Attributes:
        xyxy: float32 ``[N, 4]`` boxes as ``x1, y1, x2, y2`` in pixels of the image they were
            detected in, with ``x2 >= x1`` and ``y2 >= y1``.
        score: float32 ``[N]`` confidences in ``[0, 1]`` (objectness times class score).
        class_id: int16 ``[N]`` COCO class ids (see :attr:`PERSON`, :attr:`SPORTS_BALL`).

    Inputs of another dtype are converted (copying only when needed); invalid shapes,
    non-finite values or inverted boxes raise ``ValueError``.
    """

    xyxy: npt.NDArray[np.float32]
    score: npt.NDArray[np.float32]
    class_id: npt.NDArray[np.int16]

    PERSON: ClassVar[int] = 0
    SPORTS_BALL: ClassVar[int] = 32

    def __post_init__(self) -> None:
        # frozen=True forbids plain assignment; object.__setattr__ is the documented way for a
        # frozen dataclass to normalise its own fields during construction.
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        score = np.asarray(self.score, dtype=np.float32)
        class_id = np.asarray(self.class_id)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            if xyxy.size == 0:
                xyxy = xyxy.reshape(0, 4)
            else:
                raise ValueError(f"xyxy must have shape [N, 4], got {xyxy.shape}")
        n = xyxy.shape[0]
        if score.shape != (n,):
            raise ValueError(f"score must have shape [{n}], got {score.shape}")
        if class_id.shape != (n,):
            raise ValueError(f"class_id must have shape [{n}], got {class_id.shape}")
        class_id16 = class_id.astype(np.int16)
        # Catches fractional ids and ids outside int16 alike (both change when cast).
        if not np.array_equal(class_id16, class_id):
            raise ValueError("class_id must hold integers that fit in int16")
        if not np.isfinite(xyxy).all():
            raise ValueError("xyxy holds non-finite values")
        if not np.isfinite(score).all():
            raise ValueError("score holds non-finite values")
        if np.any(xyxy[:, 2] < xyxy[:, 0]) or np.any(xyxy[:, 3] < xyxy[:, 1]):
            raise ValueError("boxes must satisfy x2 >= x1 and y2 >= y1")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "class_id", class_id16)

    def __len__(self) -> int:
        """Number of detections."""
        return int(self.xyxy.shape[0])

    @classmethod
    def from_arrays(
        cls, xyxy: npt.ArrayLike, score: npt.ArrayLike, class_id: npt.ArrayLike
    ) -> Detections:
        """Build from any array-likes (lists, other dtypes); converted and validated.

        Args:
            xyxy: ``[N, 4]`` boxes, ``x1, y1, x2, y2``.
            score: ``[N]`` confidences.
            class_id: ``[N]`` integer class ids.
        """
        return cls(
            xyxy=np.asarray(xyxy, dtype=np.float32),
            score=np.asarray(score, dtype=np.float32),
            # No dtype here: a fractional id must reach validation, not be truncated.
            class_id=np.asarray(class_id),
        )

    @classmethod
    def empty(cls) -> Detections:
        """Detections with no boxes."""
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            score=np.zeros(0, np.float32),
            class_id=np.zeros(0, np.int16),
        )

    @classmethod
    def concat(cls, parts: Sequence[Detections]) -> Detections:
        """Concatenate detections (e.g. from several tiles) in order.

        Args:
            parts: the detections to join; may be empty.

        Returns:
            One ``Detections`` holding every box of ``parts``.
        """
        if not parts:
            return cls.empty()
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts], axis=0),
            score=np.concatenate([p.score for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
        )

    def filter(self, mask: npt.NDArray[np.bool_] | npt.NDArray[np.integer]) -> Detections:
        """Select detections by a boolean mask or an index array.

        Args:
            mask: boolean ``[N]`` mask, or integer indices (order is kept, so this also sorts).

        Returns:
            A new ``Detections`` with the selected rows.
        """
        sel = np.asarray(mask)
        if sel.dtype == np.bool_ and sel.shape != (len(self),):
            raise ValueError(f"boolean mask must have shape [{len(self)}], got {sel.shape}")
        return Detections(xyxy=self.xyxy[sel], score=self.score[sel], class_id=self.class_id[sel])

    def of_class(self, class_id: int) -> Detections:
        """Only the detections of one class."""
        return self.filter(self.class_id == class_id)

    @property
    def area(self) -> npt.NDArray[np.float32]:
        """Box areas in square pixels, float32 ``[N]``."""
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return (wh[:, 0] * wh[:, 1]).astype(np.float32)
