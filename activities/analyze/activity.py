"""The analyze stage as a Temporal activity: speeds, distances and heatmaps from track points.

Thin on purpose. Chunk by chunk it reads the chunk's ``track_points`` (pitch metres), computes
the speeds (:func:`~activities.analyze.metrics.speeds`) and the chunk's per-track statistics,
and writes both back as replaceable (match, revision, chunk) slices with
:func:`~activities.analyze.rows.write_chunk`, so a retried chunk leaves one copy. Distances per
track and the teams' heatmap grids are summed over chunks; after every chunk the sums go into
the heartbeat, so an attempt that dies resumes at the next chunk. The heatmaps are stored as
JSON and the manifest is written last.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from temporalio import activity

from activities.analyze.metrics import CELL_M, heatmap_grid, speeds
from activities.analyze.rows import player_stats_table, track_points_table, write_chunk
from polyvision.artifacts import (
    ChunkSpan,
    Manifest,
    artifact_key,
    inputs_digest,
    read_matching_manifest,
    write_manifest,
)
from polyvision.geometry.pitch import PITCH_M
from polyvision.heartbeat import heartbeat
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.objects import ObjectStore

CODE_VERSION = "analyze-1"
"""Bump when the same track points would give other speeds, statistics or heatmaps."""

HEATMAPS_VERSION = 1


AnalyzeChunk = ChunkSpan
"""The shared chunk span, under the name this stage's inputs use."""


@dataclass
class AnalyzeInput:
    """The whole match's track points, chunk by chunk.

    Attributes:
        organization_id: Tenant of the match.
        match_id: The match.
        revision: Processing revision.
        chunks: Chunks in match order.
        fps: Frame rate of the match.
    """

    organization_id: str
    match_id: str
    revision: int
    chunks: list[AnalyzeChunk]
    fps: float


@dataclass
class AnalyzeOutput:
    """What the match's analysis produced.

    Attributes:
        tracks: Distinct tracks seen in the match.
        total_distance_m: Distance covered by all tracks together, metres.
        heatmaps_key: Object key of ``heatmaps.json`` (a grid of point counts per team).
        manifest_key: Where the manifest is.
        from_manifest: True when an earlier attempt's manifest answered.
    """

    tracks: int
    total_distance_m: float
    heatmaps_key: str
    manifest_key: str
    from_manifest: bool = False


@dataclass
class _Totals:
    """The sums carried from chunk to chunk (and through heartbeats, as JSON)."""

    chunks_done: int
    distance: dict[int, float]
    heatmaps: dict[int, npt.NDArray[np.int64]]

    def to_details(self) -> dict[str, Any]:
        # JSON object keys are strings; grids are 20 x 16 integers per team, well inside a
        # heartbeat's payload even for a whole match.
        return {
            "chunks_done": self.chunks_done,
            "distance": {str(track): metres for track, metres in self.distance.items()},
            "heatmaps": {str(team): grid.tolist() for team, grid in self.heatmaps.items()},
        }

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> _Totals:
        return cls(
            chunks_done=int(details["chunks_done"]),
            distance={int(t): float(m) for t, m in details["distance"].items()},
            heatmaps={
                int(t): np.asarray(g, dtype=np.int64) for t, g in details["heatmaps"].items()
            },
        )


def _resume() -> _Totals:
    details = activity.info().heartbeat_details if activity.in_activity() else ()
    if details and isinstance(details[0], dict) and "chunks_done" in details[0]:
        return _Totals.from_details(details[0])
    return _Totals(chunks_done=0, distance={}, heatmaps={})


def analyze_chunk(
    rows: dict[str, np.ndarray], fps: float, totals: _Totals
) -> tuple[pa.Table, pa.Table]:
    """One chunk's rows with speeds, its per-track statistics; adds to ``totals``.

    Args:
        rows: The chunk's ``frame, track_id, team, pitch_x, pitch_y`` columns.
        fps: Frame rate.
        totals: Running sums, updated in place.

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
    speed = speeds(frame, track_id, x, y, fps)
    points = track_points_table(frame, track_id, team, x, y, speed)
    stats = player_stats_table(frame, track_id, team, x, y, fps, speed)
    for track, metres in zip(
        stats.column("track_id").to_pylist(), stats.column("distance_m").to_pylist(), strict=True
    ):
        totals.distance[int(track)] = totals.distance.get(int(track), 0.0) + float(metres)
    for value, grid in heatmap_grid(x, y, team).items():
        previous = totals.heatmaps.get(value)
        totals.heatmaps[value] = grid if previous is None else previous + grid
    return points, stats


def heatmaps_document(totals: _Totals) -> dict[str, Any]:
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


class AnalyzeActivities:
    """The analyze activity, bound to the worker's stores.

    Args:
        objects: Object store receiving ``heatmaps.json`` and the manifest.
        analytics: Analytics store holding the track points (speeds and stats written back).
    """

    def __init__(self, objects: ObjectStore, analytics: AnalyticsStore) -> None:
        self._objects = objects
        self._analytics = analytics

    def _scope(self, input: AnalyzeInput) -> dict[str, Any]:
        return {"org": input.organization_id, "match": input.match_id, "revision": input.revision}

    def _chunk_points(self, input: AnalyzeInput, chunk: int) -> dict[str, np.ndarray]:
        return self._analytics.query_numpy(
            "SELECT frame, track_id, team, pitch_x, pitch_y FROM track_points "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32} AND chunk = {chunk:UInt32}",
            {**self._scope(input), "chunk": chunk},
        )

    def _track_points_digest(self, input: AnalyzeInput) -> str:
        # Positions and teams decide every output; the speed column is this stage's own
        # output, so it stays out (otherwise the first run would invalidate its manifest).
        rows = self._analytics.query_numpy(
            "SELECT count() AS n, "
            "sum(cityHash64(chunk, frame, track_id, team, pitch_x, pitch_y)) AS h "
            "FROM track_points "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32}",
            self._scope(input),
        )
        return f"{int(rows['n'][0])}:{int(rows['h'][0])}"

    @activity.defn(name="analyze_match")
    async def analyze(self, input: AnalyzeInput) -> AnalyzeOutput:
        """Speeds, per-chunk player stats, distances and team heatmaps of the whole match."""
        heatmaps_key = artifact_key(
            input.organization_id, input.match_id, input.revision, "analyze", "heatmaps.json"
        )
        manifest_key = artifact_key(
            input.organization_id, input.match_id, input.revision, "analyze", "manifest.json"
        )
        digest = inputs_digest(
            {
                "chunks": [(c.chunk, c.first_frame, c.frames) for c in input.chunks],
                "fps": input.fps,
                "track_points": await asyncio.to_thread(self._track_points_digest, input),
            }
        )
        done = await read_matching_manifest(self._objects, manifest_key, digest, CODE_VERSION)
        if done is not None:
            return AnalyzeOutput(
                tracks=int(done.outputs["tracks"]),
                total_distance_m=float(done.outputs["total_distance_m"]),
                heatmaps_key=str(done.outputs["heatmaps_key"]),
                manifest_key=manifest_key,
                from_manifest=True,
            )
        totals = _resume()
        for position in range(totals.chunks_done, len(input.chunks)):
            chunk = input.chunks[position]
            rows = await asyncio.to_thread(self._chunk_points, input, chunk.chunk)
            points, stats = await asyncio.to_thread(analyze_chunk, rows, input.fps, totals)
            await asyncio.to_thread(
                write_chunk,
                self._analytics,
                input.organization_id,
                input.match_id,
                input.revision,
                chunk.chunk,
                track_points=points,
                player_stats=stats,
            )
            totals.chunks_done = position + 1
            heartbeat(totals.to_details())
        body = json.dumps(heatmaps_document(totals), separators=(",", ":")).encode()
        await self._objects.put(heatmaps_key, body, content_type="application/json")
        # fsum in track order: the same total whatever order the tracks were first seen in.
        total = math.fsum(totals.distance[t] for t in sorted(totals.distance))
        outputs = {
            "tracks": len(totals.distance),
            "total_distance_m": total,
            "heatmaps_key": heatmaps_key,
        }
        await write_manifest(
            self._objects,
            manifest_key,
            Manifest(
                stage="analyze", inputs_digest=digest, code_version=CODE_VERSION, outputs=outputs
            ),
        )
        return AnalyzeOutput(
            tracks=len(totals.distance),
            total_distance_m=total,
            heatmaps_key=heatmaps_key,
            manifest_key=manifest_key,
        )
