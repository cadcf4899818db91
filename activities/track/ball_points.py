"""The ball's track as analytics rows (``ball_points``), and back, for the stages that read it.

The track stage writes one ``ball_points`` row per frame (`ball_points_table`, a slice per
chunk through `AnalyticsStore.replace_slice`); the virtual camera, the analyze stage, the
overlay and ``polyvision eval`` read them back (`read_ball_track`, or their own query and
`ball_track_from_rows`). Column names and types follow
``polyvision/storage/analytics/migrations/0004_ball.sql``; the slice key columns
(organization, match, revision, chunk) are left out because ``replace_slice`` adds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from activities.track.ball_track import BallTrack
from polyvision.stage import MatchScoped
from polyvision.storage.analytics import AnalyticsStore

#: ``ball_points`` columns written by the track stage (the slice keys come from replace_slice).
BALL_POINTS_SCHEMA = pa.schema(
    [
        ("frame", pa.uint32()),
        ("pitch_x", pa.float32()),
        ("pitch_y", pa.float32()),
        ("height_m", pa.float32()),
        ("visible", pa.uint8()),
        ("observed", pa.uint8()),
        ("in_play", pa.uint8()),
        ("confidence", pa.float32()),
    ]
)

#: The columns readers select, comma-separated, in `BALL_POINTS_SCHEMA` order.
BALL_POINTS_COLUMNS = ", ".join(BALL_POINTS_SCHEMA.names)

#: The columns that decide where the ball is reported: what a reader's manifest depends on.
BALL_DIGEST_COLUMNS = "chunk, frame, pitch_x, pitch_y, height_m, visible, observed, in_play"


@dataclass(frozen=True)
class MatchRevision:
    """A match revision to read, for callers that hold no stage input (`MatchScoped`)."""

    organization_id: str
    match_id: str
    revision: int


def ball_points_table(track: BallTrack) -> pa.Table:
    """The ``ball_points`` rows of a ball track (or of one chunk's slice of it).

    Positions and height are written NaN, and ``in_play`` false, where the ball is not
    visible, whatever the track holds there: the table's contract, not the tracker's.

    Raises:
        pyarrow.ArrowInvalid: A frame is negative or does not fit UInt32.
    """
    visible = np.asarray(track.visible, np.bool_)
    hidden = ~visible
    x = np.where(hidden, np.nan, track.xy[:, 0])
    y = np.where(hidden, np.nan, track.xy[:, 1])
    z = np.where(hidden, np.nan, track.z)
    columns = [
        np.asarray(track.frame, np.int64),
        x,
        y,
        z,
        visible.astype(np.uint8),
        np.asarray(track.observed, np.bool_).astype(np.uint8),
        (np.asarray(track.in_play, np.bool_) & visible).astype(np.uint8),
        np.asarray(track.confidence, np.float64),
    ]
    # pyarrow's conversion is checked: a negative frame raises instead of wrapping around.
    return pa.table(
        [
            pa.array(values, field.type)
            for values, field in zip(columns, BALL_POINTS_SCHEMA, strict=True)
        ],
        schema=BALL_POINTS_SCHEMA,
    )


def ball_track_from_rows(rows: Mapping[str, np.ndarray[Any, Any]]) -> BallTrack:
    """A `BallTrack` from ``ball_points`` columns (as `AnalyticsStore.query_numpy` returns them).

    Rows may come in any order; they are sorted by frame. Frames missing between the first and
    the last row (a chunk not written yet, or a query for reported frames only) become
    not-visible rows, so the result keeps `BallTrack`'s "no gaps" promise. A frame given twice
    keeps its last row.

    Args:
        rows: ``frame``, ``pitch_x``, ``pitch_y``, ``height_m``, ``visible``, ``observed``,
            ``in_play`` and ``confidence`` arrays of one length.

    Raises:
        ValueError: A column is missing or the columns differ in length.
    """
    missing = [name for name in BALL_POINTS_SCHEMA.names if name not in rows]
    if missing:
        raise ValueError(f"ball_points rows lack {missing}")
    frame = np.asarray(rows["frame"], np.int64)
    n = frame.shape[0]
    for name in BALL_POINTS_SCHEMA.names:
        if np.asarray(rows[name]).shape != (n,):
            raise ValueError(f"ball_points column {name!r} must have {n} rows")
    if n == 0:
        return BallTrack.not_seen(0, 0)
    # Stable sort on the reversed rows, then first of each frame: the last row given wins.
    order = n - 1 - np.argsort(frame[::-1], kind="stable")
    unique, first = np.unique(frame[order], return_index=True)
    take = order[first]
    first_frame = int(unique[0])
    track = BallTrack.not_seen(first_frame, int(unique[-1]) - first_frame + 1)
    at = unique - first_frame
    visible = np.asarray(rows["visible"])[take].astype(np.bool_)
    track.xy[at, 0] = np.asarray(rows["pitch_x"], np.float64)[take]
    track.xy[at, 1] = np.asarray(rows["pitch_y"], np.float64)[take]
    track.z[at] = np.asarray(rows["height_m"], np.float64)[take]
    track.visible[at] = visible
    track.observed[at] = np.asarray(rows["observed"])[take].astype(np.bool_)
    track.in_play[at] = np.asarray(rows["in_play"])[take].astype(np.bool_) & visible
    track.confidence[at] = np.asarray(rows["confidence"], np.float64)[take]
    return track


def read_ball_track(
    analytics: AnalyticsStore,
    scope: MatchScoped,
    *,
    start_frame: int | None = None,
    end_frame: int | None = None,
    reported_only: bool = False,
) -> BallTrack:
    """A match revision's ball track from ``ball_points`` (empty when it has no rows).

    Args:
        analytics: The analytics store.
        scope: Organization, match and revision to read.
        start_frame: First frame to read; None: from the start.
        end_frame: Frame after the last one to read; None: to the end.
        reported_only: Read only the frames where the ball is reported (visible and in play);
            the others come back as not-visible rows between them.
    """
    where = (
        "organization_id = {org:String} AND match_id = {match:String}"
        " AND revision = {revision:UInt32}"
    )
    parameters: dict[str, str | int] = {
        "org": scope.organization_id,
        "match": scope.match_id,
        "revision": scope.revision,
    }
    if start_frame is not None:
        where += " AND frame >= {start:UInt32}"
        parameters["start"] = max(start_frame, 0)
    if end_frame is not None:
        where += " AND frame < {end:UInt32}"
        parameters["end"] = max(end_frame, 0)
    if reported_only:
        where += " AND visible = 1 AND in_play = 1"
    rows = analytics.query_numpy(
        f"SELECT {BALL_POINTS_COLUMNS} FROM ball_points WHERE {where} ORDER BY frame",
        parameters,
    )
    if not rows:  # chDB answers an empty result with no columns at all
        return BallTrack.not_seen(0, 0)
    return ball_track_from_rows(rows)


def ball_points_digest(
    analytics: AnalyticsStore, scope: MatchScoped, columns: str = BALL_DIGEST_COLUMNS
) -> str:
    """A digest of a match revision's ``ball_points`` over ``columns`` (comma-separated).

    The row count and the sum of the rows' hashes: it does not depend on the row order. A
    revision without ball rows (written before the ball was tracked) digests as ``0:0``.
    """
    rows = analytics.query_numpy(
        f"SELECT count() AS n, sum(cityHash64({columns})) AS h "
        "FROM ball_points "
        "WHERE organization_id = {org:String} AND match_id = {match:String} "
        "AND revision = {revision:UInt32}",
        {"org": scope.organization_id, "match": scope.match_id, "revision": scope.revision},
    )
    return f"{int(rows['n'][0])}:{int(rows['h'][0])}"
