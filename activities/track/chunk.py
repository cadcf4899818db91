"""Tracking chunk by chunk: detections fed to the tracker frame by frame, as pitch-metre rows.

Foot points of the live tracks become pitch metres through the panorama model, and each live
track is matched (IoU, one to one) to the frame's person detection it was updated with, whose
torso colour (detect stage) is a sample of the track's kit colour for `activities.track.teams`.
`MatchTracking` is what carries from one chunk to the next (identities, colour samples, points
written), as plain data an attempt that dies leaves in its heartbeat for the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.optimize import linear_sum_assignment

from activities.detect.detections import Detections
from activities.stitch.panorama import PanoramaModel, panorama_to_pitch
from activities.track.bytetrack import ByteTracker, box_iou
from activities.track.contracts import TrackChunk
from activities.track.teams import ColourAccumulator

COLOUR_MATCH_IOU = 0.5
"""A live track takes the colour of the frame's person detection overlapping it at least this."""


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


@dataclass
class MatchTracking:
    """What tracking carries from chunk to chunk, in match order.

    The state (`to_state`) is plain JSON-able data, exact across a round trip: it rides in the
    track activity's heartbeat details, so a resumed attempt continues at the next chunk with
    the same identities and ends with the same teams.

    Attributes:
        tracker: The tracker, after the chunks done.
        colours: Every track's kit colour samples so far.
        points_per_chunk: Track points of each chunk done (one entry per chunk tracked).
    """

    tracker: ByteTracker
    colours: ColourAccumulator = field(default_factory=ColourAccumulator)
    points_per_chunk: list[int] = field(default_factory=list)

    @property
    def chunks_done(self) -> int:
        """Chunks tracked (and written) so far."""
        return len(self.points_per_chunk)

    def track(
        self,
        model: PanoramaModel,
        chunk: TrackChunk,
        frame: np.ndarray,
        class_id: np.ndarray,
        score: np.ndarray,
        xyxy: np.ndarray,
        torso_lab: np.ndarray | None = None,
    ) -> pa.Table:
        """`track_chunk` on the next chunk; folds in its colours and returns its track points."""
        tracked = track_chunk(self.tracker, model, chunk, frame, class_id, score, xyxy, torso_lab)
        self.colours.add_chunk(tracked.colour_track_id, tracked.colour_lab)
        self.points_per_chunk.append(len(tracked.points))
        return tracked.points

    def to_state(self) -> dict[str, Any]:
        """Everything needed to resume, as JSON-able plain data."""
        return {
            "chunks_done": self.chunks_done,
            "points_per_chunk": list(self.points_per_chunk),
            "tracker": self.tracker.to_state(),
            "colours": self.colours.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MatchTracking:
        """Inverse of :meth:`to_state`."""
        return cls(
            tracker=ByteTracker.from_state(state["tracker"]),
            colours=ColourAccumulator.from_state(state.get("colours", [])),
            points_per_chunk=list(state["points_per_chunk"]),
        )
