"""The track stage as a Temporal activity: ByteTrack over every chunk's detections, in order.

Tracking is sequential by nature (identities carry across chunks), so this is one long activity
over the whole match. After each chunk it writes that chunk's track points (a replaceable
slice) and heartbeats the tracking state (`activities.track.chunk.MatchTracking`), so an
attempt that dies resumes at the next chunk with the same identities. Foot points become pitch
metres through the panorama model.

Teams come from kit colour: each live track is matched (IoU) to the frame's detection it was
updated with, whose torso colour (detect stage) is a sample of the track's colour; the samples
are summarised per track (`ColourAccumulator`, carried in the heartbeat details too). A track's
team is only known once enough of it has been seen, so the chunks are first written with team
-1 and, after the last chunk, every chunk's slice is rewritten with the teams of
`assign_teams` over the whole match.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pyarrow as pa
from temporalio import activity

from activities.stitch.panorama import PanoramaModel
from activities.track.bytetrack import ByteTracker
from activities.track.chunk import MatchTracking, track_points_table
from activities.track.contracts import TrackInput, TrackOutput
from activities.track.teams import team_column
from polyvision.heartbeat import heartbeat, resume_details
from polyvision.stage import StageStep
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.objects import ObjectStore
from polyvision.temporal import names

CODE_VERSION = "track-3"
"""track-3: the manifest records the typed output (StageStep); track-2: teams from kit colour."""

STAGE = "track"


class TrackActivities:
    """The track activity, bound to the worker's stores."""

    def __init__(self, objects: ObjectStore, analytics: AnalyticsStore) -> None:
        self._objects = objects
        self._analytics = analytics

    @activity.defn(name=names.TRACK_MATCH)
    async def track_match(self, input: TrackInput) -> TrackOutput:
        """Track people through every chunk; write track points per chunk."""
        step = self._step(input)
        if (done := await step.recorded()) is not None:
            return done
        model = PanoramaModel.from_json(
            (await self._objects.get(input.panorama_model_key)).decode()
        )
        state = self._resume(input)
        for chunk in input.chunks[state.chunks_done :]:
            detections = await asyncio.to_thread(self._chunk_detections, input, chunk.chunk)
            points = await asyncio.to_thread(state.track, model, chunk, *detections)
            await asyncio.to_thread(self._write_points, input, chunk.chunk, points)
            heartbeat(state.to_state())
        # Teams need the whole match's colours: rewrite every chunk's slice with them. Redone
        # in full by a resumed attempt (the heartbeat after the last chunk holds the colours).
        teams = state.colours.teams()
        finished = state.to_state()
        for chunk in input.chunks:
            await asyncio.to_thread(self._write_teams, input, chunk.chunk, teams)
            heartbeat(finished)
        output = TrackOutput(
            tracks=await asyncio.to_thread(self._count_tracks, input),
            points=sum(state.points_per_chunk),
            manifest_key=step.manifest_key,
            points_per_chunk=list(state.points_per_chunk),
        )
        team_sizes = [sum(1 for t in teams.values() if t == k) for k in (0, 1)]
        return await step.record(output, {"teams": team_sizes})

    def _step(self, input: TrackInput) -> StageStep[TrackOutput]:
        return StageStep.for_match(
            self._objects,
            input,
            stage=STAGE,
            inputs={
                "chunks": [(c.chunk, c.first_frame, c.frames) for c in input.chunks],
                "panorama_model_key": input.panorama_model_key,
                "detections_digest": input.detections_digest,
                "fps": input.fps,
            },
            code_version=CODE_VERSION,
            output_type=TrackOutput,
        )

    @staticmethod
    def _resume(input: TrackInput) -> MatchTracking:
        """The state a previous attempt saved after the chunks it finished, else a fresh one."""
        details = resume_details()
        if details is not None and "tracker" in details:
            return MatchTracking.from_state(details)
        return MatchTracking(ByteTracker(frame_rate=input.fps))

    def _chunk_detections(
        self, input: TrackInput, chunk: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rows = self._analytics.query_numpy(
            "SELECT frame, class_id, score, x1, y1, x2, y2, torso_l, torso_a, torso_b "
            "FROM detections "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32} AND chunk = {chunk:UInt32}",
            {
                "org": input.organization_id,
                "match": input.match_id,
                "revision": input.revision,
                "chunk": chunk,
            },
        )
        xyxy = np.column_stack([rows[c] for c in ("x1", "y1", "x2", "y2")]).astype(np.float32)
        lab = np.column_stack([rows[c] for c in ("torso_l", "torso_a", "torso_b")])
        return (
            rows["frame"].astype(np.int64),
            rows["class_id"].astype(np.int16),
            rows["score"].astype(np.float32),
            xyxy.reshape(-1, 4),
            lab.astype(np.float32).reshape(-1, 3),
        )

    def _write_points(self, input: TrackInput, chunk: int, table: pa.Table) -> None:
        """Replace one chunk's track points."""
        self._analytics.replace_slice(
            "track_points",
            input.organization_id,
            input.match_id,
            input.revision,
            chunk,
            table,
        )

    def _write_teams(self, input: TrackInput, chunk: int, teams: dict[int, int]) -> None:
        """Rewrite one chunk's track points with the match's teams."""
        rows = self._analytics.query_numpy(
            "SELECT frame, track_id, pitch_x, pitch_y FROM track_points "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32} AND chunk = {chunk:UInt32} "
            "ORDER BY frame, track_id",
            {
                "org": input.organization_id,
                "match": input.match_id,
                "revision": input.revision,
                "chunk": chunk,
            },
        )
        track_id = rows["track_id"].astype(np.int64)
        table = track_points_table(
            rows["frame"],
            track_id,
            np.column_stack([rows["pitch_x"], rows["pitch_y"]]).reshape(-1, 2),
            team_column(track_id, teams),
        )
        self._write_points(input, chunk, table)

    def _count_tracks(self, input: TrackInput) -> int:
        rows = self._analytics.query_numpy(
            "SELECT uniqExact(track_id) AS n FROM track_points "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32}",
            {"org": input.organization_id, "match": input.match_id, "revision": input.revision},
        )
        return int(rows["n"][0])
