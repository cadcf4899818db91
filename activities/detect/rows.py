"""Detections as rows of the analytics ``detections`` table, one frame at a time.

Pure: a frame's detections (with each person's torso colour, which the track stage turns into
teams) become an Arrow table with the analytics columns; partial results of a chunk go to and
come back from Parquet bytes, so a crashed attempt can resume from its last checkpoint.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from activities.detect.ball_video import BallCandidatesFrame, BallFinder
from activities.detect.colour import torso_lab
from activities.detect.detections import Detections
from activities.detect.tiling import Detector, Tile, detect_tiled

DETECTION_COLUMNS = (
    "frame",
    "class_id",
    "score",
    "x1",
    "y1",
    "x2",
    "y2",
    "torso_l",
    "torso_a",
    "torso_b",
)


def detections_table(
    frame_index: int, detections: Detections, torso: np.ndarray | None = None
) -> pa.Table:
    """One frame's detections as rows of the analytics `detections` columns.

    Args:
        frame_index: Match frame index of the rows.
        detections: The frame's detections.
        torso: ``[N, 3]`` Lab torso colour per detection (`torso_lab`); None: all NaN.
    """
    count = len(detections)
    lab = np.full((count, 3), np.nan, np.float32) if torso is None else torso
    lab = np.asarray(lab, np.float32).reshape(count, 3)
    return pa.table(
        {
            "frame": pa.array(np.full(count, frame_index, np.uint32)),
            "class_id": pa.array(detections.class_id.astype(np.uint8)),
            "score": pa.array(detections.score),
            "x1": pa.array(detections.xyxy[:, 0]),
            "y1": pa.array(detections.xyxy[:, 1]),
            "x2": pa.array(detections.xyxy[:, 2]),
            "y2": pa.array(detections.xyxy[:, 3]),
            "torso_l": pa.array(lab[:, 0]),
            "torso_a": pa.array(lab[:, 1]),
            "torso_b": pa.array(lab[:, 2]),
        }
    )


def person_colours(image_bgr: np.ndarray, detections: Detections) -> np.ndarray:
    """``[N, 3]`` torso Lab colour of each person detection; NaN for the ball (and others)."""
    out = np.full((len(detections), 3), np.nan, np.float32)
    people = np.flatnonzero(detections.class_id == Detections.PERSON)
    if len(people):
        out[people] = torso_lab(image_bgr, detections.xyxy[people])
    return out


def frame_rows(
    detector: Detector,
    image: np.ndarray,
    tiles: list[Tile],
    frame_index: int,
    score_threshold: float,
    balls: BallFinder | None = None,
) -> tuple[pa.Table, np.ndarray]:
    """Detect in one frame's tiles and return its rows, torso colours included.

    With ``balls``, the frame's ball rows are its ball candidates (`BallFinder`: the video cues,
    the detector's own ball boxes and the people found) instead of the detector's ball boxes
    alone: many per frame, scored, for the track stage's ball tracker to choose from.

    Returns:
        The rows, and the ``[P, 4]`` boxes of the people found (for `ball_rows` on the frames
        up to the next full detection).
    """
    found = detect_tiled(detector, image, tiles, score_threshold=score_threshold)
    people = found.of_class(Detections.PERSON).xyxy
    if balls is not None:
        found = with_ball_candidates(found, balls, image)
    return detections_table(frame_index, found, person_colours(image, found)), people


def ball_rows(
    image: np.ndarray, frame_index: int, balls: BallFinder | None, people_xyxy: np.ndarray | None
) -> pa.Table:
    """The rows of a frame the full detector skips: its ball candidates alone.

    ``people_xyxy`` are the people of the last fully detected frame (None: none yet): the ball
    finder drops bright spots on them, as on a detected frame.
    """
    if balls is None:
        return empty_rows()
    people = np.zeros((0, 4), np.float32) if people_xyxy is None else people_xyxy
    none = np.zeros((0, 4), np.float32)
    found = _candidate_rows(balls(image, people, none, np.zeros(0, np.float32)))
    return detections_table(frame_index, found, person_colours(image, found))


def last_people(tables: list[pa.Table], before: int) -> np.ndarray | None:
    """The person boxes of the latest frame before ``before`` that has any, in saved rows (a
    resumed chunk picks up the people its ball finder was using)."""
    if not tables:
        return None
    table = concat_rows(tables)
    frame = table["frame"].to_numpy()
    person = (table["class_id"].to_numpy() == Detections.PERSON) & (frame < before)
    if not person.any():
        return None
    last = frame[person].max()
    rows = person & (frame == last)
    return np.column_stack([table[c].to_numpy()[rows] for c in ("x1", "y1", "x2", "y2")]).astype(
        np.float32
    )


def with_ball_candidates(found: Detections, balls: BallFinder, image: np.ndarray) -> Detections:
    """``found``'s people, and the ball candidates of the frame in place of its ball boxes."""
    people = found.of_class(Detections.PERSON)
    network = found.of_class(Detections.SPORTS_BALL)
    candidates = _candidate_rows(balls(image, people.xyxy, network.xyxy, network.score))
    others = found.filter(
        (found.class_id != Detections.PERSON) & (found.class_id != Detections.SPORTS_BALL)
    )
    return Detections.concat([people, candidates, others])


def _candidate_rows(candidates: BallCandidatesFrame) -> Detections:
    """Ball candidates as ball detections."""
    return Detections(
        candidates.xyxy,
        candidates.score,
        np.full(len(candidates), Detections.SPORTS_BALL, np.int16),
    )


def empty_rows() -> pa.Table:
    """No rows, with the columns and types of `detections_table`."""
    return detections_table(0, Detections.empty())


def concat_rows(tables: list[pa.Table]) -> pa.Table:
    """The rows of several frames as one table (`empty_rows` for none)."""
    return pa.concat_tables(tables) if tables else empty_rows()


def detection_counts(table: pa.Table) -> tuple[int, int]:
    """How many rows are persons and how many the ball: ``(persons, balls)``."""
    class_ids = table.column("class_id").to_numpy()
    balls = int((class_ids == Detections.SPORTS_BALL).sum())
    return int(len(class_ids) - balls), balls


def rows_to_parquet(tables: list[pa.Table]) -> bytes:
    """The rows of several frames as Parquet bytes (a checkpoint of a chunk in progress)."""
    buffer = io.BytesIO()
    pq.write_table(concat_rows(tables), buffer)
    return buffer.getvalue()


def rows_from_parquet(data: bytes) -> pa.Table | None:
    """Rows saved by `rows_to_parquet`; None when older code saved other columns."""
    partial = pq.read_table(io.BytesIO(data))
    if not partial.schema.equals(empty_rows().schema):
        return None
    return partial
