"""A team's shape on the pitch: centroid, width, depth and compactness, minute by minute.

Per sampled frame, over the team's outfield players seen in it (the goalkeeper stretches the
depth without telling anything about the block): the centroid, the width (spread across the
pitch, ``y``) and depth (along it, ``x``) as the range between the outermost players, the mean
distance to the centroid (compactness: smaller is tighter), and the area of the convex hull.
A minute's figures are the means over its sampled frames. Frames with fewer than
``min_players`` players of the team seen are skipped: a few players do not make a shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial import ConvexHull, QhullError

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

#: Fewest players of a team in a frame for its shape to be measured.
MIN_PLAYERS = 5
#: Shape samples per second: a block moves slowly, every frame would add cost, not information.
SAMPLES_PER_S = 5.0


@dataclass(frozen=True)
class TeamShape:
    """One team's mean shape over one minute.

    Attributes:
        team: 0 or 1.
        minute: Minute of the match (0 from the first frame).
        samples: Frames measured.
        centroid_x: Mean x of the players, metres.
        centroid_y: Mean y, metres.
        width_m: Spread across the pitch (max y - min y).
        depth_m: Spread along the pitch (max x - min x).
        compactness_m: Mean distance of the players to their centroid.
        hull_area_m2: Area of the players' convex hull.
    """

    team: int
    minute: int
    samples: int
    centroid_x: float
    centroid_y: float
    width_m: float
    depth_m: float
    compactness_m: float
    hull_area_m2: float


def frame_shape(xy: F64) -> tuple[float, float, float, float, float, float]:
    """Centroid x, y, width, depth, compactness and hull area of one frame's players."""
    centroid = xy.mean(axis=0)
    width = float(xy[:, 1].max() - xy[:, 1].min())
    depth = float(xy[:, 0].max() - xy[:, 0].min())
    compactness = float(np.hypot(*(xy - centroid).T).mean())
    try:
        # For a 2-D hull, ``volume`` is the area.
        area = float(ConvexHull(xy).volume) if len(xy) >= 3 else 0.0
    except QhullError:  # all players on one line
        area = 0.0
    return float(centroid[0]), float(centroid[1]), width, depth, compactness, area


def team_shapes(
    frame: npt.ArrayLike,
    team: npt.ArrayLike,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    fps: float,
    first_frame: int = 0,
    *,
    min_players: int = MIN_PLAYERS,
    samples_per_s: float = SAMPLES_PER_S,
) -> list[TeamShape]:
    """Per team and minute, the mean shape of the team's players.

    Args:
        frame: Frame of each point (outfield players only: the caller leaves goalkeepers,
            referees and unknown people out).
        team: Team of each point (0 or 1).
        x: Pitch x of each point, metres.
        y: Pitch y of each point, metres.
        fps: Frames per second.
        first_frame: The match's first frame (minute 0 starts there).
        min_players: Fewest players for a frame to count.
        samples_per_s: Frames measured per second.

    Returns:
        One entry per team and minute with at least one measured frame, by team then minute.
    """
    frames = np.asarray(frame, np.int64)
    teams = np.asarray(team, np.int64)
    xy = np.column_stack([np.asarray(x, np.float64), np.asarray(y, np.float64)])
    ok = np.isfinite(xy).all(axis=1)
    stride = max(1, round(fps / samples_per_s))
    sampled = ok & ((frames - first_frame) % stride == 0)
    out: list[TeamShape] = []
    for side in (0, 1):
        mine = np.flatnonzero(sampled & (teams == side))
        if mine.size == 0:
            continue
        mine = mine[np.argsort(frames[mine], kind="stable")]
        starts = np.flatnonzero(np.diff(frames[mine])) + 1
        per_minute: dict[int, list[tuple[float, ...]]] = {}
        for block in np.split(mine, starts):
            if block.size < min_players:
                continue
            minute = int((frames[block[0]] - first_frame) // (60.0 * fps))
            per_minute.setdefault(minute, []).append(frame_shape(xy[block]))
        for minute in sorted(per_minute):
            means = np.mean(np.asarray(per_minute[minute]), axis=0)
            out.append(TeamShape(side, minute, len(per_minute[minute]), *map(float, means)))
    return out
