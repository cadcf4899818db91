"""Tracking when the full detector ran on every ``stride``-th frame only.

The detect stage finds people on match frames ``f % stride == 0`` (`activities.detect.tuning`).
The online tracker then steps on those frames alone, as a tracker of ``fps / stride`` frames a
second -- its motion model, gates and time limits are in seconds and metres, so they hold --
and the frames between are carried: each identity's position moves linearly from one detected
frame to the next. At 25 fps and stride 4 that is 0.16 s, a few tens of centimetres of a sprint.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from activities.track.linking import TrackRows
from activities.track.pitch_tracker import TrackerSettings

F64 = npt.NDArray[np.float64]


def tracker_settings(stride: int, base: TrackerSettings | None = None) -> TrackerSettings:
    """The tracker's settings for detections every ``stride`` frames.

    Everything is in seconds and metres but ``confirm_hits``, a count of detections: keep the
    time a new track needs to count about the same, with at least two hits (one detection is
    never a person).
    """
    settings = base or TrackerSettings()
    if stride <= 1:
        return settings
    return replace(settings, confirm_hits=max(2, math.ceil(settings.confirm_hits / stride)))


def carry_between_detections(
    rows: TrackRows, lab: F64 | None, stride: int
) -> tuple[TrackRows, F64 | None]:
    """Fill each identity's frames between two detected frames ``stride`` apart, linearly.

    Only gaps of exactly the stride are filled (a longer gap is a miss, which the match-wide
    linking judges with its own limits). Filled rows are not marked interpolated: they are the
    tracker's ordinary answer between detections, not a gap. Their torso colour is the earlier
    row's.

    Args:
        rows: Online track points, any order.
        lab: ``[R, 3]`` each row's torso colour, or None.
        stride: Frames between two detected frames.

    Returns:
        The rows with the carried ones added, sorted by (frame, identity), and their colours.
    """
    if stride <= 1 or not len(rows.frame):
        return rows, lab
    order = np.lexsort((rows.frame, rows.track_id))
    frame, track, xy = rows.frame[order], rows.track_id[order], rows.xy[order]
    step = np.diff(frame)
    gaps = np.flatnonzero((track[1:] == track[:-1]) & (step == stride))
    fractions = np.arange(1, stride, dtype=np.float64) / stride
    start = np.repeat(gaps, stride - 1)
    t = np.tile(fractions, len(gaps))
    new_frame = frame[start] + np.tile(np.arange(1, stride), len(gaps))
    new_xy = xy[start] + (xy[start + 1] - xy[start]) * t[:, None]
    all_frame = np.concatenate([frame, new_frame])
    all_track = np.concatenate([track, track[start]])
    all_xy = np.concatenate([xy, new_xy])
    all_interp = np.concatenate([rows.interpolated[order], np.zeros(len(new_frame), np.bool_)])
    final = np.lexsort((all_track, all_frame))
    carried = TrackRows(all_frame[final], all_track[final], all_xy[final], all_interp[final])
    if lab is None:
        return carried, None
    sorted_lab = lab[order]
    return carried, np.concatenate([sorted_lab, sorted_lab[start]])[final]
