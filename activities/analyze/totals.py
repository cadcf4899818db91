"""The match's figures, summed chunk by chunk: distances per track and the teams' heatmaps.

`analyze_chunk` turns one chunk's track points into its rows (with speeds) and per-track
statistics, and adds the chunk to the running `MatchTotals`. The totals are plain JSON-able
data (`MatchTotals.to_details`), so they ride in the analyze activity's heartbeat and an
attempt that dies resumes at the next chunk with the same sums. `heatmaps_document` is the
``heatmaps.json`` the API reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from activities.analyze.contracts import CELL_M
from activities.analyze.metrics import heatmap_grid, speeds
from activities.analyze.rows import player_stats_table, track_points_table
from polyvision.geometry.pitch import PITCH_M

HEATMAPS_VERSION = 1


@dataclass
class MatchTotals:
    """The sums carried from chunk to chunk (and through heartbeats, as JSON).

    Attributes:
        chunks_done: Chunks analysed (and written) so far.
        distance: Track id to metres covered.
        heatmaps: Team to its grid of point counts (`heatmap_grid`).
    """

    chunks_done: int = 0
    distance: dict[int, float] = field(default_factory=dict)
    heatmaps: dict[int, npt.NDArray[np.int64]] = field(default_factory=dict)

    def total_distance_m(self) -> float:
        """Distance covered by all tracks together, metres.

        Summed (fsum) in track order: the same total whatever order the tracks were first seen
        in.
        """
        return math.fsum(self.distance[t] for t in sorted(self.distance))

    def to_details(self) -> dict[str, Any]:
        # JSON object keys are strings; grids are 20 x 16 integers per team, well inside a
        # heartbeat's payload even for a whole match.
        return {
            "chunks_done": self.chunks_done,
            "distance": {str(track): metres for track, metres in self.distance.items()},
            "heatmaps": {str(team): grid.tolist() for team, grid in self.heatmaps.items()},
        }

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> MatchTotals:
        """Inverse of :meth:`to_details`."""
        return cls(
            chunks_done=int(details["chunks_done"]),
            distance={int(t): float(m) for t, m in details["distance"].items()},
            heatmaps={
                int(t): np.asarray(g, dtype=np.int64) for t, g in details["heatmaps"].items()
            },
        )


def analyze_chunk(
    rows: dict[str, np.ndarray], fps: float, totals: MatchTotals
) -> tuple[pa.Table, pa.Table]:
    """One chunk's rows with speeds, its per-track statistics; adds to ``totals``.

    Args:
        rows: The chunk's ``frame, track_id, team, role, pitch_x, pitch_y`` columns (``role``
            optional).
        fps: Frame rate.
        totals: Running sums, updated in place (``chunks_done`` is the caller's).

    Returns:
        The ``track_points`` and ``player_stats`` tables of the chunk.
    """
    # A stable order makes the rewritten slice (and the float sums) the same on every attempt.
    order = np.lexsort((rows["track_id"], rows["frame"]))
    frame = rows["frame"][order].astype(np.int64)
    track_id = rows["track_id"][order].astype(np.int64)
    team = rows["team"][order].astype(np.int64)
    x = rows["pitch_x"][order].astype(np.float64)
    y = rows["pitch_y"][order].astype(np.float64)
    role = rows["role"][order].astype(np.int64) if "role" in rows else None
    speed = speeds(frame, track_id, x, y, fps)
    points = track_points_table(frame, track_id, team, x, y, speed, role)
    stats = player_stats_table(frame, track_id, team, x, y, fps, speed)
    for track, metres in zip(
        stats.column("track_id").to_pylist(), stats.column("distance_m").to_pylist(), strict=True
    ):
        totals.distance[int(track)] = totals.distance.get(int(track), 0.0) + float(metres)
    for value, grid in heatmap_grid(x, y, team).items():
        previous = totals.heatmaps.get(value)
        totals.heatmaps[value] = grid if previous is None else previous + grid
    return points, stats


def heatmaps_document(totals: MatchTotals) -> dict[str, Any]:
    """The ``heatmaps.json`` body: per team a grid of point counts indexed ``[ix][iy]``."""
    nx, ny = round(PITCH_M[0] / CELL_M[0]), round(PITCH_M[1] / CELL_M[1])
    return {
        "version": HEATMAPS_VERSION,
        "pitch_m": list(PITCH_M),
        "cell_m": list(CELL_M),
        "shape": [nx, ny],
        # Team -1 is "unknown, referee or ball"; it is kept so nothing is silently dropped.
        "teams": {str(team): totals.heatmaps[team].tolist() for team in sorted(totals.heatmaps)},
    }
