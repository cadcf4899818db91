"""Tracking chunk by chunk: person detections to pitch metres, fed to the tracker frame by frame.

Each person detection's ground point (`activities.track.ground`, with the foot lift measured
on the chunk's own boxes) becomes pitch metres through the panorama model; detections off the
pitch (plus a margin) are spectators, staff or substitutes and are dropped before tracking.
The tracker (`PitchTracker`) reports, for every live identity, the detection it was updated
with, whose torso colour (detect stage) is a sample of the identity's kit colour for the teams
and roles at the end of the match. `MatchTracking` is what carries from one chunk to the next
(identities, colour samples, points written), as plain data an attempt that dies leaves in its
heartbeat for the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from activities.analyze.rows import track_points_table as points_table
from activities.stitch.panorama import PanoramaModel, panorama_to_pitch
from activities.track.contracts import TrackChunk
from activities.track.ground import calibrate_lift, ground_points, on_pitch
from activities.track.pitch_tracker import PitchTracker
from activities.track.stride import tracker_settings
from activities.track.teams import ColourAccumulator

TORSO_COLUMNS = ("torso_l", "torso_a", "torso_b")
"""The online points' extra columns: the torso colour of the detection behind each point."""

PERSON_CLASS = 0
"""Class id of a person in the detections table (COCO's, as the detect stage writes it)."""


def track_points_table(
    frame: np.ndarray,
    track_id: np.ndarray,
    pitch_xy: np.ndarray,
    team: np.ndarray | None = None,
    role: np.ndarray | None = None,
) -> pa.Table:
    """Rows of the analytics `track_points` table (speed unset until analyze).

    ``team`` and ``role`` are per row (`polyvision.roles` codes); None: all unknown (-1).
    The table itself is `activities.analyze.rows.track_points_table`'s, the one schema.
    """
    count = len(frame)
    unknown = np.full(count, -1, np.int8)
    xy = np.asarray(pitch_xy, np.float64).reshape(-1, 2)
    return points_table(
        frame,
        track_id,
        unknown if team is None else team,
        xy[:, 0],
        xy[:, 1],
        np.zeros(count, np.float32),
        unknown if role is None else role,
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


def track_chunk(
    tracker: PitchTracker,
    model: PanoramaModel,
    chunk: TrackChunk,
    frame: np.ndarray,
    class_id: np.ndarray,
    score: np.ndarray,
    xyxy: np.ndarray,
    torso_lab: np.ndarray | None = None,
    stride: int = 1,
) -> ChunkTracks:
    """Feed one chunk's detections to the tracker, frame by frame; returns its track points.

    Frames without a detection are still fed, so lost tracks age correctly. With ``stride``,
    people were detected on match frames ``f % stride == 0`` only: those alone are fed (the
    tracker runs at ``fps / stride``; `activities.track.stride`). ``torso_lab``
    (``[N, 3]``, NaN: none) gives each detection's kit colour; the colour of the detection
    each reported identity was updated with comes back as a sample.
    """
    lab = np.full((len(frame), 3), np.nan, np.float32) if torso_lab is None else torso_lab
    people = (class_id == PERSON_CLASS) & (score >= tracker.settings.low_score)
    frame, score, xyxy, lab = frame[people], score[people], xyxy[people], lab[people]
    # The foot lift is measured on the chunk's own confident boxes: shadows and the way
    # figures stand differ with the sun and the side of the pitch (`activities.track.ground`).
    lift = calibrate_lift(model, xyxy[score >= tracker.settings.high_score])
    pitch = panorama_to_pitch(model, ground_points(xyxy, lift)) if len(frame) else np.zeros((0, 2))
    inside = np.isfinite(pitch).all(axis=1) & on_pitch(pitch)
    frame, score, pitch, lab = frame[inside], score[inside], pitch[inside], lab[inside]
    order = np.argsort(frame, kind="stable")
    frame, score, pitch, lab = frame[order], score[order], pitch[order], lab[order]
    bounds = np.searchsorted(
        frame, np.arange(chunk.first_frame, chunk.first_frame + chunk.frames + 1)
    )
    frames_out: list[np.ndarray] = []
    ids_out: list[np.ndarray] = []
    xy_out: list[np.ndarray] = []
    sample_lab: list[np.ndarray] = []
    for offset in range(chunk.frames):
        if (chunk.first_frame + offset) % stride:
            continue
        rows = slice(bounds[offset], bounds[offset + 1])
        answer = tracker.update(pitch[rows], score[rows], lab[rows])
        if not len(answer.track_id) and not answer.earlier:
            continue
        frames_out.append(np.full(len(answer.track_id), chunk.first_frame + offset, np.int64))
        ids_out.append(answer.track_id)
        xy_out.append(answer.xy)
        sample_lab.append(lab[rows][answer.detection])
        if answer.earlier:
            # Hits of the tracks confirmed now, from before (maybe in the previous chunk: the
            # match-wide pass files every row under its own frame's chunk).
            earlier = np.array(answer.earlier, np.float64)
            steps_ago = earlier[:, 0].astype(np.int64)
            frames_out.append(chunk.first_frame + offset - stride * steps_ago)
            ids_out.append(earlier[:, 1].astype(np.int64))
            xy_out.append(earlier[:, 2:4])
            sample_lab.append(earlier[:, 4:7].astype(np.float32))
    if not frames_out:
        empty = track_points_table(np.zeros(0), np.zeros(0), np.zeros((0, 2)))
        return ChunkTracks(empty, np.zeros(0, np.int64), np.zeros((0, 3), np.float32))
    ids = np.concatenate(ids_out)
    points = track_points_table(np.concatenate(frames_out), ids, np.concatenate(xy_out))
    return ChunkTracks(points, ids, np.concatenate(sample_lab).astype(np.float32))


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
        stride: People were detected on every ``stride``-th frame (the tracker steps on those).
    """

    tracker: PitchTracker
    colours: ColourAccumulator = field(default_factory=ColourAccumulator)
    points_per_chunk: list[int] = field(default_factory=list)
    stride: int = 1

    @classmethod
    def start(cls, fps: float, stride: int = 1) -> MatchTracking:
        """A fresh tracking for a match at ``fps`` detected every ``stride`` frames."""
        tracker = PitchTracker(fps / stride, tracker_settings(stride))
        return cls(tracker, stride=stride)

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
        tracked = track_chunk(
            self.tracker, model, chunk, frame, class_id, score, xyxy, torso_lab, self.stride
        )
        self.colours.add_chunk(tracked.colour_track_id, tracked.colour_lab)
        self.points_per_chunk.append(len(tracked.points))
        points = tracked.points
        for column, values in zip(TORSO_COLUMNS, tracked.colour_lab.T, strict=True):
            points = points.append_column(column, pa.array(values.astype(np.float32)))
        return points

    def to_state(self) -> dict[str, Any]:
        """Everything needed to resume, as JSON-able plain data."""
        return {
            "chunks_done": self.chunks_done,
            "points_per_chunk": list(self.points_per_chunk),
            "tracker": self.tracker.to_state(),
            "colours": self.colours.to_state(),
            "stride": self.stride,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MatchTracking:
        """Inverse of :meth:`to_state`."""
        stride = int(state.get("stride", 1))
        return cls(
            tracker=PitchTracker.from_state(state["tracker"], tracker_settings(stride)),
            colours=ColourAccumulator.from_state(state.get("colours", [])),
            points_per_chunk=list(state["points_per_chunk"]),
            stride=stride,
        )
