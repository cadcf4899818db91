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
as JSON.

Then the match-wide figures a coach reads (:func:`~activities.analyze.figures.match_figures`):
the whole revision's track points and ball, read once, become player identities (with the
analyst's overrides, when the input names them), their distances, speeds, zones, sprints and
heatmaps, each team's possession and shape per minute, and the passes and other events. They
are written as rows replaced per (match, revision)
(:func:`~activities.analyze.figure_rows.write_figures`) and as ``figures.json``. The manifest
is written last.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

import numpy as np
from temporalio import activity

from activities.analyze.contracts import AnalyzeChunk, AnalyzeInput, AnalyzeOutput
from activities.analyze.figure_rows import write_figures
from activities.analyze.figures import MatchFigures, match_figures
from activities.analyze.identities import IdentityOverrides
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

T = TypeVar("T")

CODE_VERSION = "analyze-4"
"""analyze-2: the manifest records the typed output (StageStep).
analyze-3: possession per chunk (``team_possession``) from the ball.
analyze-4: match figures (identities, possession with hysteresis, passes, shape) as rows and
``figures.json``."""

STAGE = "analyze"

HEARTBEAT_EVERY_S = 10.0
"""How often the figures step heartbeats while it computes."""


async def _heartbeating(work: Awaitable[T], details: dict[str, Any]) -> T:
    """Await ``work``, heartbeating ``details`` every `HEARTBEAT_EVERY_S` until it is done."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_S)
        if done:
            return task.result()
        heartbeat(details)


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
        # The whole match's figures take tens of seconds on a long match: keep heartbeating the
        # finished chunks' sums meanwhile, so the attempt is not timed out (nor resumed short).
        figures = await _heartbeating(self._figures(input), totals.to_details())
        figures_key = artifact_key(
            input.organization_id, input.match_id, input.revision, STAGE, "figures.json"
        )
        body = json.dumps(figures.to_json(), separators=(",", ":")).encode()
        await self._objects.put(figures_key, body, content_type="application/json")
        passes = figures.passes()
        output = AnalyzeOutput(
            tracks=len(totals.distance),
            total_distance_m=totals.total_distance_m(),
            heatmaps_key=heatmaps_key,
            manifest_key=step.manifest_key,
            figures_key=figures_key,
            players=len(figures.players),
            passes=passes[0]["completed"] + passes[1]["completed"],
        )
        return await step.record(output)

    async def _figures(self, input: AnalyzeInput) -> MatchFigures:
        """The match-wide figures, written as rows (replacing the revision's)."""
        overrides = await self._overrides(input)
        points = await asyncio.to_thread(self._match_points, input)
        ball = await asyncio.to_thread(read_ball_track, self._analytics, input)
        first_frame = input.chunks[0].first_frame if input.chunks else None
        figures = await asyncio.to_thread(
            match_figures, points, ball, input.fps, first_frame, overrides
        )
        await asyncio.to_thread(
            write_figures,
            self._analytics,
            input.organization_id,
            input.match_id,
            input.revision,
            figures,
        )
        return figures

    async def _overrides(self, input: AnalyzeInput) -> IdentityOverrides | None:
        if not input.overrides_key:
            return None
        return IdentityOverrides.from_json(json.loads(await self._objects.get(input.overrides_key)))

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
                # The overrides' content, not only their key: an analyst's new correction under
                # the same key must redo the figures.
                "overrides": await self._overrides_digest(input),
            },
            code_version=CODE_VERSION,
            output_type=AnalyzeOutput,
        )

    async def _overrides_digest(self, input: AnalyzeInput) -> str:
        if not input.overrides_key:
            return ""
        return hashlib.sha256(await self._objects.get(input.overrides_key)).hexdigest()

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

    def _match_points(self, input: AnalyzeInput) -> dict[str, np.ndarray]:
        rows = self._analytics.query_numpy(
            "SELECT frame, track_id, team, role, pitch_x, pitch_y FROM track_points "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32} ORDER BY frame, track_id",
            self._scope(input),
        )
        if not rows:  # chDB answers an empty result with no columns at all
            names = ("frame", "track_id", "team", "role", "pitch_x", "pitch_y")
            return {name: np.zeros(0) for name in names}
        return rows

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
