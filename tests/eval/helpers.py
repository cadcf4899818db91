"""Builders for the hand-made truth and results of the eval tests."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from evaluation.formats import Detections, Tracks, Truth, VcamQuads

Box = tuple[float, float, float, float]
NO_BOX: Box = (0.0, 0.0, 0.0, 0.0)


def make_truth(
    rows: Sequence[tuple[int, int, str, tuple[float, float, float], Box | None]],
    frames: int = 10,
    in_play: Sequence[bool] | None = None,
    goalkeepers: Collection[int] = (),
) -> Truth:
    """Truth from ``(frame, id, team, (x, y, z), left_box)`` rows; ``None`` = not visible left.

    The right camera sees nothing, so detections in ``right`` only ever add false positives.
    Home and away people are outfield players, except the ids in ``goalkeepers``.
    """
    role = {"home": "outfield", "away": "outfield", "referee": "referee", "ball": "ball"}
    n = len(rows)
    left = np.array([r[4] if r[4] is not None else NO_BOX for r in rows], np.float32)
    return Truth(
        fps=25.0,
        frames=frames,
        size=(1920, 1080),
        seed=7,
        frame=np.array([r[0] for r in rows], np.int32),
        id=np.array([r[1] for r in rows], np.int16),
        team=np.array([r[2] for r in rows], np.str_),
        role=np.array(["goalkeeper" if r[1] in goalkeepers else role[r[2]] for r in rows], np.str_),
        position=np.array([r[3] for r in rows], np.float32).reshape(n, 3),
        boxes={"left": left.reshape(n, 4), "right": np.zeros((n, 4), np.float32)},
        visible={
            "left": np.array([r[4] is not None for r in rows], np.bool_),
            "right": np.zeros(n, np.bool_),
        },
        in_play=None if in_play is None else np.array(in_play, np.bool_),
    )


def make_detections(rows: Sequence[tuple[int, str, int, float, Box]]) -> Detections:
    """Detections from ``(frame, space, class_id, score, box)`` rows."""
    n = len(rows)
    return Detections(
        frame=np.array([r[0] for r in rows], np.int32),
        space=np.array([r[1] for r in rows], np.str_),
        class_id=np.array([r[2] for r in rows], np.int16),
        score=np.array([r[3] for r in rows], np.float32),
        boxes=np.array([r[4] for r in rows], np.float32).reshape(n, 4),
    )


def make_tracks(
    rows: Sequence[tuple[int, int, str, float, float]], roles: Sequence[str] | None = None
) -> Tracks:
    """Tracks from ``(frame, track_id, team, x, y)`` rows and, if given, one role per row."""
    n = len(rows)
    return Tracks(
        frame=np.array([r[0] for r in rows], np.int32),
        track_id=np.array([r[1] for r in rows], np.int32),
        team=np.array([r[2] for r in rows], np.str_),
        position=np.array([(r[3], r[4]) for r in rows], np.float32).reshape(n, 2),
        role=None if roles is None else np.array(roles, np.str_),
    )


def make_vcam(rows: Sequence[tuple[int, float, float, float, float]]) -> VcamQuads:
    """Axis-aligned ground quads from ``(frame, x_min, y_min, x_max, y_max)`` rows."""
    quads = [((a, b), (c, b), (c, d), (a, d)) for _, a, b, c, d in rows]
    return VcamQuads(
        frame=np.array([r[0] for r in rows], np.int32),
        quad=np.array(quads, np.float32).reshape(len(rows), 4, 2),
    )


def two_players(frames: int = 10) -> Truth:
    """Player 1 (home) walks along y = 10 and player 2 (away) along y = 30, 0.5 m per frame,
    from x = 10; the ball (id 0) sits at (52.5, 34). Nobody is visible in a camera."""
    rows: list[tuple[int, int, str, tuple[float, float, float], Box | None]] = []
    for f in range(frames):
        rows.append((f, 0, "ball", (52.5, 34.0, 0.11), None))
        rows.append((f, 1, "home", (10.0 + 0.5 * f, 10.0, 0.0), None))
        rows.append((f, 2, "away", (10.0 + 0.5 * f, 30.0, 0.0), None))
    return make_truth(rows, frames)


def perfect_tracks(frames: int = 10) -> list[tuple[int, int, str, float, float]]:
    """Track 11 exactly on player 1 and track 12 on player 2, with the right teams."""
    rows = []
    for f in range(frames):
        rows.append((f, 11, "home", 10.0 + 0.5 * f, 10.0))
        rows.append((f, 12, "away", 10.0 + 0.5 * f, 30.0))
    return rows
