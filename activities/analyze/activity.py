"""The analyze stage as a Temporal activity: speeds, distances, heatmaps and possession from
track points and the ball.

Thin on purpose. Chunk by chunk it reads the chunk's ``track_points`` (pitch metres) and
``ball_points``, computes the speeds and the chunk's per-track statistics
(:func:`~activities.analyze.totals.analyze_chunk`) and who had the ball
(:func:`~activities.analyze.possession.chunk_possession`; nobody in a revision tracked before
the ball was), and writes them back as replaceable (match, revision, chunk) slices with
:func:`~activities.analyze.rows.write_chunk`, so a retried chunk leaves one copy. Distances
per track and the teams' heatmap grids are summed over chunks; after every chunk the sums go
into the heartbeat, so an attempt that dies resumes at the next chunk. The heatmaps are stored
as JSON and the manifest is written last.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
from temporalio import activity

from activities.analyze.contracts import AnalyzeChunk, AnalyzeInput, AnalyzeOutput
from activities.analyze.possession import chunk_possession
from activities.analyze.rows import write_chunk
from activities.analyze.totals import MatchTotals, analyze_chunk, heatmaps_document
from activities.track.ball_points import ball_points_digest, read_ball_track
from activities.track.ball_track import BallTrack
from activities.track.points import track_points_digest
from polyvision.artifacts import artifact_key
from polyvision.heartbeat import heartbeat, resume_details
from polyvision.stage import StageStep
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.objects import ObjectStore
from polyvision.temporal import names

CODE_VERSION = "analyze-3"
"""analyze-2: the manifest records the typed output (StageStep).
analyze-3: possession per chunk (``team_possession``) from the ball."""

STAGE = "analyze"


class AnalyzeActivities:
    """The analyze activity, bound to the worker's stores.

    Args:
        objects: Object store receiving ``heatmaps.json`` and the manifest.
        analytics: Analytics store holding the track points (speeds and stats written back).
    """

    def __init__(self, objects: ObjectStore, analytics: AnalyticsStore) -> None:
        self._objects = objects
        self._analytics = analytics

    @activity.defn(name=names.ANALYZE_MATCH)
    async def analyze(self, input: AnalyzeInput) -> AnalyzeOutput:
        """Speeds, per-chunk player stats, distances and team heatmaps of the whole match."""
        step = await self._step(input)
        if (done := await step.recorded()) is not None:
            return done
        totals = self._resume()
        for chunk in input.chunks[totals.chunks_done :]:
            rows = await asyncio.to_thread(self._chunk_points, input, chunk.chunk)
            points, stats = await asyncio.to_thread(analyze_chunk, rows, input.fps, totals)
            ball = await asyncio.to_thread(self._chunk_ball, input, chunk)
            possession = await asyncio.to_thread(chunk_possession, ball, points)
            await asyncio.to_thread(
                write_chunk,
                self._analytics,
                input.organization_id,
                input.match_id,
                input.revision,
                chunk.chunk,
                track_points=points,
                player_stats=stats,
                team_possession=possession,
            )
            totals.chunks_done += 1
            heartbeat(totals.to_details())
        heatmaps_key = artifact_key(
            input.organization_id, input.match_id, input.revision, STAGE, "heatmaps.json"
        )
        body = json.dumps(heatmaps_document(totals), separators=(",", ":")).encode()
        await self._objects.put(heatmaps_key, body, content_type="application/json")
        output = AnalyzeOutput(
            tracks=len(totals.distance),
            total_distance_m=totals.total_distance_m(),
            heatmaps_key=heatmaps_key,
            manifest_key=step.manifest_key,
        )
        return await step.record(output)

    async def _step(self, input: AnalyzeInput) -> StageStep[AnalyzeOutput]:
        return StageStep.for_match(
            self._objects,
            input,
            stage=STAGE,
            inputs={
                "chunks": [(c.chunk, c.first_frame, c.frames) for c in input.chunks],
                "fps": input.fps,
                "track_points": await asyncio.to_thread(self._track_points_digest, input),
                "ball_points": await asyncio.to_thread(ball_points_digest, self._analytics, input),
            },
            code_version=CODE_VERSION,
            output_type=AnalyzeOutput,
        )

    @staticmethod
    def _resume() -> MatchTotals:
        """The sums a previous attempt heartbeated after its last finished chunk, else zeros."""
        details = resume_details()
        if details is not None and "chunks_done" in details:
            return MatchTotals.from_details(details)
        return MatchTotals()

    def _scope(self, input: AnalyzeInput) -> dict[str, Any]:
        return {"org": input.organization_id, "match": input.match_id, "revision": input.revision}

    def _chunk_points(self, input: AnalyzeInput, chunk: int) -> dict[str, np.ndarray]:
        return self._analytics.query_numpy(
            "SELECT frame, track_id, team, role, pitch_x, pitch_y FROM track_points "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32} AND chunk = {chunk:UInt32}",
            {**self._scope(input), "chunk": chunk},
        )

    def _chunk_ball(self, input: AnalyzeInput, chunk: AnalyzeChunk) -> BallTrack:
        return read_ball_track(
            self._analytics,
            input,
            start_frame=chunk.first_frame,
            end_frame=chunk.first_frame + chunk.frames,
        )

    def _track_points_digest(self, input: AnalyzeInput) -> str:
        # Positions and teams decide every output; the speed column is this stage's own
        # output, so it stays out (otherwise the first run would invalidate its manifest).
        return track_points_digest(
            self._analytics, input, "chunk, frame, track_id, team, pitch_x, pitch_y"
        )
