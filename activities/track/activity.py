"""The track stage as a Temporal activity: people tracked on the pitch through every chunk.

Tracking is sequential by nature (identities carry across chunks), so this is one long activity
over the whole match, in two passes:

1. Online, chunk by chunk: the chunk's person detections become pitch metres and feed the
   tracker (`activities.track.chunk.MatchTracking`). Each chunk's online points are saved as
   an artifact and the tracking state rides in the heartbeat, so an attempt that dies resumes
   at the next chunk with the same identities.
2. Match-wide, after the last chunk: the online points of every chunk are read back, the
   fragments of one player joined, short gaps filled, stubs dropped, and every identity given
   its team and role (`activities.track.finish`); the outfield kits become home and away by
   the match's settings (`activities.track.sides`). Each chunk's slice of the analytics table
   ``track_points`` is then replaced with the final rows, so a retried finish writes the same.
"""

from __future__ import annotations

import asyncio
import functools
import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from temporalio import activity

from activities.stitch.panorama import PanoramaModel
from activities.track.ball_points import ball_points_table
from activities.track.ball_track import BallTrack
from activities.track.ball_tracker import BallCandidates, track_ball
from activities.track.chunk import TORSO_COLUMNS, MatchTracking, track_points_table
from activities.track.contracts import TrackChunk, TrackInput, TrackOutput
from activities.track.finish import FinishedTracks, finish_tracks
from activities.track.linking import TrackRows
from activities.track.sides import SIDES_ARTIFACT, KitCluster, SideSettings, SidesRecord
from activities.track.stride import carry_between_detections
from activities.track.teams import team_column
from polyvision.artifacts import artifact_key
from polyvision.heartbeat import heartbeat, resume_details
from polyvision.roles import ROLE_PLAYER
from polyvision.stage import StageStep
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.objects import ObjectStore
from polyvision.temporal import names

CODE_VERSION = "track-6"
"""track-6: people detected every ``detect_stride`` frames, carried between; track-5: the match
ball (``ball_points``); track-4: pitch-space tracker, match-wide joining, roles; track-3: typed
output (StageStep); track-2: teams from kit colour."""

STAGE = "track"

BALL_CLASS_ID = 32
"""COCO's sports ball: the detect stage's ball candidate rows."""


class TrackActivities:
    """The track activity, bound to the worker's stores."""

    def __init__(self, objects: ObjectStore, analytics: AnalyticsStore) -> None:
        self._objects = objects
        self._analytics = analytics

    @activity.defn(name=names.TRACK_MATCH)
    async def track_match(self, input: TrackInput) -> TrackOutput:
        """Track people through every chunk, then finish the match's identities and kits."""
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
            await self._objects.put(self._online_key(input, chunk), _to_parquet(points))
            heartbeat(state.to_state())
        online = [await self._online_points(input, chunk) for chunk in input.chunks]
        rows, lab = carry_between_detections(*_rows_of(online), input.detect_stride)
        finished = await asyncio.to_thread(
            functools.partial(finish_tracks, rows, state.colours, input.fps, lab=lab)
        )
        sides = _decide_sides(input, finished)
        await self._objects.put(self._sides_key(input), sides.to_json())
        ball = await asyncio.to_thread(self._track_ball, input, model)
        per_chunk: list[int] = []
        for chunk in input.chunks:
            table = _chunk_table(finished, sides, chunk)
            await asyncio.to_thread(self._write_points, input, chunk.chunk, table)
            end = chunk.first_frame + chunk.frames
            await asyncio.to_thread(
                self._write_ball, input, chunk.chunk, ball.slice_frames(chunk.first_frame, end)
            )
            per_chunk.append(len(table))
            heartbeat(state.to_state())
        output = TrackOutput(
            tracks=len(np.unique(finished.rows.track_id)),
            points=sum(per_chunk),
            manifest_key=step.manifest_key,
            points_per_chunk=per_chunk,
        )
        roles = {
            str(r): sum(1 for v in finished.kits.role.values() if v == r) for r in range(-1, 3)
        }
        details = {
            "roles": roles,
            "sides": sides.assignment.rule,
            "ball": {
                "frames": len(ball),
                "visible": int(ball.visible.sum()),
                "observed": int(ball.observed.sum()),
                "in_play": int(ball.in_play.sum()),
            },
        }
        return await step.record(output, details)

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
                "detect_stride": input.detect_stride,
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
        return MatchTracking.start(input.fps, input.detect_stride)

    @staticmethod
    def _sides_key(input: TrackInput) -> str:
        return artifact_key(
            input.organization_id, input.match_id, input.revision, STAGE, SIDES_ARTIFACT
        )

    @staticmethod
    def _online_key(input: TrackInput, chunk: TrackChunk) -> str:
        name = f"online-{chunk.chunk:05d}.parquet"
        return artifact_key(input.organization_id, input.match_id, input.revision, STAGE, name)

    async def _online_points(self, input: TrackInput, chunk: TrackChunk) -> pa.Table:
        return pq.read_table(io.BytesIO(await self._objects.get(self._online_key(input, chunk))))

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

    def _track_ball(self, input: TrackInput, model: PanoramaModel) -> BallTrack:
        """The match ball over the whole match, from every chunk's ball candidates."""
        rows = self._analytics.query_numpy(
            "SELECT frame, score, x1, y1, x2, y2 FROM detections "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32} AND class_id = {ball:UInt8}",
            {
                "org": input.organization_id,
                "match": input.match_id,
                "revision": input.revision,
                "ball": BALL_CLASS_ID,
            },
        )
        uv = np.column_stack(
            [(rows["x1"] + rows["x2"]) / 2.0, (rows["y1"] + rows["y2"]) / 2.0]
        ).astype(np.float64)
        candidates = BallCandidates(
            rows["frame"].astype(np.int64), uv.reshape(-1, 2), rows["score"].astype(np.float64)
        )
        first = min((c.first_frame for c in input.chunks), default=0)
        end = max((c.first_frame + c.frames for c in input.chunks), default=0)
        return track_ball(candidates, model, first, end - first, input.fps)

    def _write_ball(self, input: TrackInput, chunk: int, track: BallTrack) -> None:
        """Replace one chunk's ball points."""
        self._analytics.replace_slice(
            "ball_points",
            input.organization_id,
            input.match_id,
            input.revision,
            chunk,
            ball_points_table(track),
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


def _to_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _rows_of(tables: list[pa.Table]) -> tuple[TrackRows, np.ndarray | None]:
    """The online points of every chunk, and their torso colours (None: saved without)."""
    if not tables:
        return TrackRows.of(np.zeros(0), np.zeros(0), np.zeros((0, 2))), None
    table = pa.concat_tables(tables, promote_options="default")
    rows = TrackRows.of(
        table["frame"].to_numpy(),
        table["track_id"].to_numpy(),
        np.column_stack([table["pitch_x"].to_numpy(), table["pitch_y"].to_numpy()]),
    )
    if not all(c in table.column_names for c in TORSO_COLUMNS):
        return rows, None
    lab = np.column_stack([table[c].to_numpy(zero_copy_only=False) for c in TORSO_COLUMNS]).astype(
        np.float64
    )
    return rows, lab


STARTING_MINUTES = 3.0
"""Which side a kit defends is read from where its players stand in the first minutes."""


def _decide_sides(input: TrackInput, finished: FinishedTracks) -> SidesRecord:
    """Home and away for the two kit clusters, from the match's settings (see `sides`)."""
    rows = finished.rows
    early = (
        rows.frame < rows.frame.min() + STARTING_MINUTES * 60 * input.fps
        if len(rows.frame)
        else rows.frame
    )
    clusters: dict[int, KitCluster] = {}
    for cluster, lab in finished.kits.cluster_lab.items():
        members = early & (finished.team == cluster) & (finished.role == ROLE_PLAYER)
        mean_x = float(rows.xy[members, 0].mean()) if members.any() else float("nan")
        clusters[cluster] = KitCluster.from_float_lab(lab, mean_x)
    settings = SideSettings(
        home_kit_colour=input.home_kit_colour,
        away_kit_colour=input.away_kit_colour,
        home_starts_left=input.home_starts_left,
        teams_swapped=input.teams_swapped,
    )
    return SidesRecord.decide(clusters, settings)


def _chunk_table(finished: FinishedTracks, sides: SidesRecord, chunk: TrackChunk) -> pa.Table:
    rows = finished.rows  # sorted by frame (`linking`): a chunk's rows are one slice
    start, end = np.searchsorted(rows.frame, [chunk.first_frame, chunk.first_frame + chunk.frames])
    inside = slice(int(start), int(end))
    team = team_column(finished.team[inside], sides.assignment.team_codes())
    return track_points_table(
        rows.frame[inside], rows.track_id[inside], rows.xy[inside], team, finished.role[inside]
    )
