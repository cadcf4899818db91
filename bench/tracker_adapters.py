"""The trackers of the tracker bench behind one signature: detections in, pitch track points out.

Every adapter takes the same input (the panorama model, the match's chunks, its panorama
detections of every class, the frame rate) and returns the track points in pitch metres, so the
harness times and scores them alike; an adapter's time is the tracker's (detection is done
before). Each adapter does what its tracker needs around it, and no more:

* `our_tracks`: our track stage's own entry points, as the track activity drives them: the
  online tracker chunk by chunk, then the match-wide finishing pass. It picks the people itself,
  maps their ground points to the pitch and samples torso colours for the teams (part of our
  stage's cost). **The one place that knows our tracker's API**: when the stage changes, change
  this function and nothing else.
* `supervision_bytetrack_tracks`: ``supervision.ByteTrack`` 0.30.9 (the last release that has it)
  on the person boxes, frame by frame.
* `boxmot_ocsort_tracks`: BoxMOT's OC-SORT (``boxmot`` 25) on the person boxes, frame by frame.

Both peers see every frame, empty ones included, and their tracks' foot points (the bottom centre
of the box, or ``foot_lift`` of its height above it) go to the pitch through `panorama_to_pitch`
after tracking, all frames at once.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from activities.detect.detections import Detections
from activities.stitch.panorama import PanoramaModel, panorama_to_pitch
from activities.track.contracts import TrackChunk
from activities.track.ground import ground_points
from bench.tracker_data import MatchDetections


@dataclass(frozen=True)
class TrackPoints:
    """Tracked people in pitch metres, row ``i`` one track in one frame.

    Attributes:
        frame: ``[M]`` match frame.
        track_id: ``[M]`` identity, unique within a frame.
        xy: ``[M, 2]`` pitch metres.
    """

    frame: npt.NDArray[np.int64]
    track_id: npt.NDArray[np.int64]
    xy: npt.NDArray[np.float64]

    @classmethod
    def empty(cls) -> TrackPoints:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2)))


TrackerAdapter = Callable[
    [PanoramaModel, Sequence[TrackChunk], MatchDetections, float], TrackPoints
]
"""``(model, chunks, detections, fps) -> track points``: what the harness runs."""


def our_tracks(
    model: PanoramaModel,
    chunks: Sequence[TrackChunk],
    detections: MatchDetections,
    fps: float,
    *,
    finish: bool = True,
) -> TrackPoints:
    """Our track stage on the whole match, as the track activity runs it, without the stores.

    Online, `MatchTracking` with a `PitchTracker` over the chunks in order (people to pitch
    metres, tracked there, torso colours sampled); then, with ``finish``, the match-wide
    `finish_tracks` pass (fragments joined, gaps filled, stubs dropped) on those points.

    Args:
        model: The panorama model the boxes are in.
        chunks: The match's chunks, in order.
        detections: Every detection of the match (all classes, torso colours included).
        fps: Frame rate of the match.
        finish: Run the finishing pass (what the stage writes); False: the online points.

    Returns:
        The track points, pitch metres.
    """
    from activities.track.chunk import TORSO_COLUMNS, MatchTracking
    from activities.track.finish import finish_tracks
    from activities.track.linking import TrackRows
    from activities.track.pitch_tracker import PitchTracker

    tracking = MatchTracking(PitchTracker(fps))
    tables = []
    for chunk in chunks:
        rows = detections.in_chunk(chunk)
        tables.append(
            tracking.track(
                model, chunk, rows.frame, rows.class_id, rows.score, rows.xyxy, rows.torso_lab
            )
        )
    if not tables:
        return TrackPoints.empty()
    table = pa.concat_tables(tables)
    online = TrackRows.of(
        table.column("frame").to_numpy(),
        table.column("track_id").to_numpy(),
        np.column_stack([table.column("pitch_x").to_numpy(), table.column("pitch_y").to_numpy()]),
    )
    lab = np.column_stack(
        [table.column(c).to_numpy(zero_copy_only=False) for c in TORSO_COLUMNS]
    ).astype(np.float64)
    final = finish_tracks(online, tracking.colours, fps, lab=lab).rows if finish else online
    return TrackPoints(final.frame, final.track_id, final.xy)


# --- the peers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PeopleByFrame:
    """The person boxes of every frame ``0 .. frames - 1``, as per-frame slices."""

    xyxy: npt.NDArray[np.float32]
    score: npt.NDArray[np.float32]
    bounds: npt.NDArray[np.intp]

    @classmethod
    def of(cls, detections: MatchDetections, frames: int) -> _PeopleByFrame:
        people = detections.select(detections.class_id == Detections.PERSON)
        order = np.argsort(people.frame, kind="stable")
        frame = people.frame[order]
        bounds = np.searchsorted(frame, np.arange(frames + 1))
        return cls(people.xyxy[order], people.score[order], bounds)

    def rows(self, frame: int) -> slice:
        return slice(int(self.bounds[frame]), int(self.bounds[frame + 1]))


def _frame_count(chunks: Sequence[TrackChunk]) -> int:
    return max((c.first_frame + c.frames for c in chunks), default=0)


def _to_pitch(
    model: PanoramaModel,
    frames: list[npt.NDArray[np.int64]],
    ids: list[npt.NDArray[np.int64]],
    boxes: list[npt.NDArray[np.float32]],
    foot_lift: float,
) -> TrackPoints:
    """Foot points of the tracks' boxes to pitch metres; points at or above the horizon go."""
    if not frames:
        return TrackPoints.empty()
    pitch = panorama_to_pitch(model, ground_points(np.concatenate(boxes), foot_lift))
    keep = np.isfinite(pitch).all(axis=1)
    return TrackPoints(
        np.concatenate(frames)[keep], np.concatenate(ids)[keep], pitch[keep].astype(np.float64)
    )


def supervision_bytetrack_tracks(
    model: PanoramaModel,
    chunks: Sequence[TrackChunk],
    detections: MatchDetections,
    fps: float,
    *,
    foot_lift: float = 0.0,
) -> TrackPoints:
    """``supervision.ByteTrack`` with its defaults at the match's frame rate, all frames in a row.

    It reports the detections it matched this frame (boxes as detected), each with its track.
    """
    import supervision as sv

    with warnings.catch_warnings():
        # Deprecated since supervision 0.28 in favour of Roboflow's `trackers` package, and
        # warns so on construction; 0.30.9 is pinned for it.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        tracker = sv.ByteTrack(frame_rate=fps)
    people = _PeopleByFrame.of(detections, _frame_count(chunks))
    person = np.zeros(0, np.int64)
    frames, ids, boxes = [], [], []
    for frame in range(_frame_count(chunks)):
        rows = people.rows(frame)
        found = sv.Detections(
            xyxy=people.xyxy[rows],
            confidence=people.score[rows],
            class_id=np.resize(person, rows.stop - rows.start),
        )
        tracked = tracker.update_with_detections(found)
        if len(tracked) == 0 or tracked.tracker_id is None:
            continue
        frames.append(np.full(len(tracked), frame, np.int64))
        ids.append(np.asarray(tracked.tracker_id, np.int64))
        boxes.append(np.asarray(tracked.xyxy, np.float32))
    return _to_pitch(model, frames, ids, boxes, foot_lift)


def _import_ocsort() -> Any:
    """BoxMOT's OC-SORT class, importable without PyTorch.

    ``boxmot.trackers.base`` imports torch at the top for its tensor in- and output API; OC-SORT
    fed numpy rows (``update(ndarray, ndarray)``, returning an ndarray) never calls it. PyTorch
    from PyPI is a CUDA build of several GB, so the bench does not install it: where torch is
    absent, an empty module stands in for it during the import only. Anything that did use
    torch would fail on the empty module (AttributeError), not compute something else.
    """
    stand_in = importlib.util.find_spec("torch") is None and "torch" not in sys.modules
    if stand_in:
        sys.modules["torch"] = types.ModuleType("torch")
    try:
        from boxmot.trackers.box.ocsort.tracker import OcSort
    finally:
        if stand_in:
            del sys.modules["torch"]  # nothing else in the process may take it for PyTorch
    logging.getLogger("boxmot").setLevel(logging.WARNING)  # it logs its settings at INFO
    return OcSort


def boxmot_ocsort_tracks(
    model: PanoramaModel,
    chunks: Sequence[TrackChunk],
    detections: MatchDetections,
    fps: float,
    *,
    foot_lift: float = 0.0,
) -> TrackPoints:
    """BoxMOT's OC-SORT with its defaults, all frames in a row.

    Its defaults count in frames (``max_age=30``), not seconds, so ``fps`` is not used. It reports
    its Kalman boxes of the tracks updated this frame (rows ``x1, y1, x2, y2, id, conf, cls,
    det_ind``).
    """
    del fps  # OC-SORT's settings are in frames
    tracker = _import_ocsort()()
    frame_count = _frame_count(chunks)
    people = _PeopleByFrame.of(detections, frame_count)
    # The frame argument only gives the image size (used by some association functions): a
    # blank panorama-sized image, made once.
    image = np.zeros((model.height, model.width, 3), np.uint8)
    frames, ids, boxes = [], [], []
    for frame in range(frame_count):
        rows = people.rows(frame)
        count = rows.stop - rows.start
        dets = np.zeros((count, 6), np.float32)
        dets[:, :4] = people.xyxy[rows]
        dets[:, 4] = people.score[rows]
        out = np.asarray(tracker.update(dets, image))
        if len(out) == 0:
            continue
        frames.append(np.full(len(out), frame, np.int64))
        ids.append(out[:, 4].astype(np.int64))
        boxes.append(out[:, :4].astype(np.float32))
    return _to_pitch(model, frames, ids, boxes, foot_lift)
