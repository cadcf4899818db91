"""The track stage as a Temporal activity: ByteTrack over every chunk's detections, in order.

Tracking is sequential by nature (identities carry across chunks), so this is one long activity
over the whole match. After each chunk it writes that chunk's track points (a replaceable
slice) and heartbeats the tracker's state, so an attempt that dies resumes at the next chunk
with the same identities. Foot points become pitch metres through the panorama model.

Teams come from kit colour: each live track is matched (IoU) to the frame's detection it was
updated with, whose torso colour (detect stage) is a sample of the track's colour; the samples
are summarised per track (`ColourAccumulator`, carried in the heartbeat details too). A track's
team is only known once enough of it has been seen, so the chunks are first written with team
-1 and, after the last chunk, every chunk's slice is rewritten with the teams of
`assign_teams` over the whole match.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from scipy.optimize import linear_sum_assignment
from temporalio import activity

from activities.detect.detections import Detections
from activities.stitch.panorama import PanoramaModel, panorama_to_pitch
from activities.track.bytetrack import ByteTracker, box_iou
from activities.track.teams import ColourAccumulator, team_column
from polyvision.artifacts import (
    ChunkSpan,
    Manifest,
    artifact_key,
    inputs_digest,
    read_matching_manifest,
    write_manifest,
)
from polyvision.heartbeat import heartbeat
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.objects import ObjectStore

CODE_VERSION = "track-2"
"""track-2: teams from kit colour (track-1 wrote team -1 everywhere)."""

COLOUR_MATCH_IOU = 0.5
"""A live track takes the colour of the frame's person detection overlapping it at least this."""


TrackChunk = ChunkSpan
"""The shared chunk span, under the name this stage's inputs use."""


@dataclass
class TrackInput:
    """The whole match's detections, chunk by chunk.

    Attributes:
        organization_id: Tenant.
        match_id: The match.
        revision: Processing revision.
        chunks: Chunks in match order.
        panorama_model_key: Object key of the panorama model JSON (stitch stage).
        fps: Frame rate of the match.
        detections_digest: Digest of the detect stage's outputs (manifest input).
    """

    organization_id: str
    match_id: str
    revision: int
    chunks: list[TrackChunk]
    panorama_model_key: str
    fps: float
    detections_digest: str = ""


@dataclass
class TrackOutput:
    """Identities and points written."""

    tracks: int
    points: int
    manifest_key: str
    from_manifest: bool = False
    points_per_chunk: list[int] = field(default_factory=list)


def track_points_table(
    frame: np.ndarray, track_id: np.ndarray, pitch_xy: np.ndarray, team: np.ndarray | None = None
) -> pa.Table:
    """Rows of the analytics `track_points` table (speed unset until analyze).

    ``team`` is per row (0, 1, -1 unknown); None: all unknown.
    """
    count = len(frame)
    teams = np.full(count, -1, np.int8) if team is None else np.asarray(team, np.int8)
    return pa.table(
        {
            "frame": pa.array(frame.astype(np.uint32)),
            "track_id": pa.array(track_id.astype(np.uint32)),
            "team": pa.array(teams),
            "pitch_x": pa.array(pitch_xy[:, 0].astype(np.float32)),
            "pitch_y": pa.array(pitch_xy[:, 1].astype(np.float32)),
            "speed": pa.array(np.zeros(count, np.float32)),
        }
    )


@dataclass
class ChunkTracks:
    """What tracking one chunk gives.

    Attributes:
        points: The chunk's `track_points` rows (team unknown).
        colour_track_id: ``[S]`` the track of each colour sample.
        colour_lab: ``[S, 3]`` the samples: torso Lab of the detection each live track matched.
    """

    points: pa.Table
    colour_track_id: np.ndarray
    colour_lab: np.ndarray


def match_colours(
    track_xyxy: np.ndarray, det_xyxy: np.ndarray, det_lab: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pair live tracks with the frame's coloured detections, one to one, by IoU.

    Returns:
        Indices of the matched tracks and the Lab colour of their detections ``[M, 3]``.
    """
    coloured = np.flatnonzero(np.isfinite(det_lab).all(axis=1))
    if len(track_xyxy) == 0 or len(coloured) == 0:
        return np.zeros(0, np.int64), np.zeros((0, 3), np.float32)
    iou = box_iou(track_xyxy, det_xyxy[coloured])
    rows, cols = linear_sum_assignment(-iou)
    good = iou[rows, cols] >= COLOUR_MATCH_IOU
    return rows[good].astype(np.int64), det_lab[coloured[cols[good]]].astype(np.float32)


def track_chunk(
    tracker: ByteTracker,
    model: PanoramaModel,
    chunk: TrackChunk,
    frame: np.ndarray,
    class_id: np.ndarray,
    score: np.ndarray,
    xyxy: np.ndarray,
    torso_lab: np.ndarray | None = None,
) -> ChunkTracks:
    """Feed one chunk's detections to the tracker, frame by frame; returns its track points.

    Frames without a detection are still fed, so lost tracks age correctly. ``torso_lab``
    (``[N, 3]``, NaN: none) gives each detection's kit colour; the live tracks' matched
    detections' colours come back as samples.
    """
    frames_out: list[np.ndarray] = []
    ids_out: list[np.ndarray] = []
    feet_out: list[np.ndarray] = []
    sample_ids: list[np.ndarray] = []
    sample_lab: list[np.ndarray] = []
    lab = np.full((len(frame), 3), np.nan, np.float32) if torso_lab is None else torso_lab
    order = np.argsort(frame, kind="stable")
    frame, class_id, score, xyxy = frame[order], class_id[order], score[order], xyxy[order]
    lab = lab[order]
    bounds = np.searchsorted(
        frame, np.arange(chunk.first_frame, chunk.first_frame + chunk.frames + 1)
    )
    for offset in range(chunk.frames):
        rows = slice(bounds[offset], bounds[offset + 1])
        tracks = tracker.update(
            Detections(xyxy=xyxy[rows], score=score[rows], class_id=class_id[rows])
        )
        live = tracks.score > 0  # coasted (predicted, undetected) boxes are not positions
        if not live.any():
            continue
        frames_out.append(np.full(int(live.sum()), chunk.first_frame + offset, np.int64))
        ids_out.append(tracks.track_id[live])
        feet_out.append(tracks.foot_points()[live])
        people = class_id[rows] == Detections.PERSON
        matched, colours = match_colours(tracks.xyxy[live], xyxy[rows][people], lab[rows][people])
        sample_ids.append(tracks.track_id[live][matched].astype(np.int64))
        sample_lab.append(colours)
    colour_ids = np.concatenate(sample_ids) if sample_ids else np.zeros(0, np.int64)
    colour_lab = np.concatenate(sample_lab) if sample_lab else np.zeros((0, 3), np.float32)
    if not frames_out:
        empty = track_points_table(np.zeros(0), np.zeros(0), np.zeros((0, 2)))
        return ChunkTracks(empty, colour_ids, colour_lab)
    feet = np.concatenate(feet_out)
    pitch = panorama_to_pitch(model, feet)
    keep = np.isfinite(pitch).all(axis=1)
    points = track_points_table(
        np.concatenate(frames_out)[keep], np.concatenate(ids_out)[keep], pitch[keep]
    )
    return ChunkTracks(points, colour_ids, colour_lab)


class TrackActivities:
    """The track activity, bound to the worker's stores."""

    def __init__(self, objects: ObjectStore, analytics: AnalyticsStore) -> None:
        self._objects = objects
        self._analytics = analytics

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
        self._analytics.replace_slice(
            "track_points",
            input.organization_id,
            input.match_id,
            input.revision,
            chunk,
            table,
        )

    @activity.defn(name="track_match")
    async def track_match(self, input: TrackInput) -> TrackOutput:
        """Track people through every chunk; write track points per chunk."""
        manifest_key = artifact_key(
            input.organization_id, input.match_id, input.revision, "track", "manifest.json"
        )
        digest = inputs_digest(
            {
                "chunks": [(c.chunk, c.first_frame, c.frames) for c in input.chunks],
                "panorama_model_key": input.panorama_model_key,
                "detections_digest": input.detections_digest,
                "fps": input.fps,
            }
        )
        done = await read_matching_manifest(self._objects, manifest_key, digest, CODE_VERSION)
        if done is not None:
            return TrackOutput(
                tracks=int(done.outputs["tracks"]),
                points=int(done.outputs["points"]),
                manifest_key=manifest_key,
                from_manifest=True,
                points_per_chunk=list(done.outputs["points_per_chunk"]),
            )
        model = PanoramaModel.from_json(
            (await self._objects.get(input.panorama_model_key)).decode()
        )
        tracker = ByteTracker(frame_rate=input.fps)
        colours = ColourAccumulator()
        start, points_per_chunk = 0, []
        details = activity.info().heartbeat_details if activity.in_activity() else ()
        if details and isinstance(details[0], dict) and "tracker" in details[0]:
            # A previous attempt finished these chunks and saved the tracker after them.
            start = int(details[0]["chunks_done"])
            points_per_chunk = list(details[0]["points_per_chunk"])
            tracker = ByteTracker.from_state(details[0]["tracker"])
            colours = ColourAccumulator.from_state(details[0].get("colours", []))
        for position in range(start, len(input.chunks)):
            chunk = input.chunks[position]
            detections = await asyncio.to_thread(self._chunk_detections, input, chunk.chunk)
            tracked = await asyncio.to_thread(track_chunk, tracker, model, chunk, *detections)
            colours.add_chunk(tracked.colour_track_id, tracked.colour_lab)
            table = tracked.points
            await asyncio.to_thread(
                self._analytics.replace_slice,
                "track_points",
                input.organization_id,
                input.match_id,
                input.revision,
                chunk.chunk,
                table,
            )
            points_per_chunk.append(len(table))
            heartbeat(
                {
                    "chunks_done": position + 1,
                    "points_per_chunk": list(points_per_chunk),
                    "tracker": tracker.to_state(),
                    "colours": colours.to_state(),
                }
            )
        # Teams need the whole match's colours: rewrite every chunk's slice with them. Redone
        # in full by a resumed attempt (the heartbeat after the last chunk holds the colours).
        teams = colours.teams()
        finished = {
            "chunks_done": len(input.chunks),
            "points_per_chunk": list(points_per_chunk),
            "tracker": tracker.to_state(),
            "colours": colours.to_state(),
        }
        for chunk in input.chunks:
            await asyncio.to_thread(self._write_teams, input, chunk.chunk, teams)
            heartbeat(finished)
        tracks = await asyncio.to_thread(self._count_tracks, input)
        outputs = {
            "tracks": tracks,
            "teams": [sum(1 for t in teams.values() if t == k) for k in (0, 1)],
            "points": sum(points_per_chunk),
            "points_per_chunk": points_per_chunk,
        }
        await write_manifest(
            self._objects,
            manifest_key,
            Manifest(
                stage="track", inputs_digest=digest, code_version=CODE_VERSION, outputs=outputs
            ),
        )
        return TrackOutput(
            tracks=tracks,
            points=sum(points_per_chunk),
            manifest_key=manifest_key,
            points_per_chunk=points_per_chunk,
        )

    def _count_tracks(self, input: TrackInput) -> int:
        rows = self._analytics.query_numpy(
            "SELECT uniqExact(track_id) AS n FROM track_points "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32}",
            {"org": input.organization_id, "match": input.match_id, "revision": input.revision},
        )
        return int(rows["n"][0])
