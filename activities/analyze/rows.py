"""The analyze stage's per-chunk rows: ``track_points`` and ``player_stats`` as Arrow tables.

Column names and types follow ``polyvision/storage/analytics/migrations/0001_initial.sql``;
the slice key columns (organization, match, revision, chunk) are left out because
`AnalyticsStore.replace_slice` adds them from its arguments.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from activities.analyze.metrics import MAX_SPEED_MPS, distance_per_track, speeds
from activities.analyze.possession import TEAM_POSSESSION_SCHEMA
from polyvision.storage.analytics import AnalyticsStore

#: ``track_points`` columns written by this stage (the slice keys come from replace_slice).
TRACK_POINTS_SCHEMA = pa.schema(
    [
        ("frame", pa.uint32()),
        ("track_id", pa.uint32()),
        ("team", pa.int8()),
        ("role", pa.int8()),
        ("pitch_x", pa.float32()),
        ("pitch_y", pa.float32()),
        ("speed", pa.float32()),
    ]
)

#: ``player_stats`` columns written by this stage.
PLAYER_STATS_SCHEMA = pa.schema(
    [
        ("track_id", pa.uint32()),
        ("team", pa.int8()),
        ("frames", pa.uint32()),
        ("distance_m", pa.float32()),
        ("max_speed", pa.float32()),
        ("sprints", pa.uint16()),
    ]
)

#: A sprint: above 25.2 km/h (the usual tracking-data threshold) for at least a second.
SPRINT_SPEED_MPS = 7.0
SPRINT_MIN_S = 1.0


def track_points_table(
    frame: npt.ArrayLike,
    track_id: npt.ArrayLike,
    team: npt.ArrayLike,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    speed: npt.ArrayLike,
    role: npt.ArrayLike | None = None,
) -> pa.Table:
    """The ``track_points`` rows of one chunk.

    Args:
        frame: Frame number of each point (match frame numbers, not chunk-relative).
        track_id: Track of each point.
        team: Team of each point (0, 1; -1 unknown, referee or ball).
        x: Pitch x in metres (NaN when unknown).
        y: Pitch y in metres (NaN when unknown).
        speed: Speed in metres per second (see `metrics.speeds`).
        role: Role code of each point (`polyvision.roles`); None: all unknown (-1).

    Returns:
        A table with `TRACK_POINTS_SCHEMA`.

    Raises:
        pyarrow.ArrowInvalid: A value does not fit its column type.
    """
    roles = np.full(len(np.asarray(frame)), -1, np.int8) if role is None else role
    columns = [frame, track_id, team, roles, x, y, speed]
    # pyarrow's conversion is checked: a negative frame or an out-of-range team raises
    # instead of wrapping around.
    return pa.table(
        [
            pa.array(np.asarray(values), field.type)
            for values, field in zip(columns, TRACK_POINTS_SCHEMA, strict=True)
        ],
        schema=TRACK_POINTS_SCHEMA,
    )


def player_stats_table(
    frame: npt.ArrayLike,
    track_id: npt.ArrayLike,
    team: npt.ArrayLike,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    fps: float,
    speed: npt.ArrayLike | None = None,
    *,
    max_speed_mps: float = MAX_SPEED_MPS,
    sprint_speed_mps: float = SPRINT_SPEED_MPS,
    sprint_min_s: float = SPRINT_MIN_S,
) -> pa.Table:
    """The ``player_stats`` rows of one chunk: one row per track seen in it.

    These are partial sums: the API adds them up over chunks. A sprint counts in the chunk
    where it starts; the one step across each chunk boundary is not in any chunk's distance
    (at most one frame's movement per chunk).

    Args:
        frame: Frame number of each point.
        track_id: Track of each point.
        team: Team of each point; a track's team is the one it has most often.
        x: Pitch x in metres.
        y: Pitch y in metres.
        fps: Frames per second.
        speed: Per-point speeds if already computed (`metrics.speeds`), else computed here.
        max_speed_mps: Fastest plausible movement; faster steps are jumps.
        sprint_speed_mps: Speed above which a run is a sprint.
        sprint_min_s: Shortest time above ``sprint_speed_mps`` that counts as a sprint.

    Returns:
        A table with `PLAYER_STATS_SCHEMA`, sorted by track id.
    """
    frames = np.asarray(frame, dtype=np.int64)
    tracks = np.asarray(track_id, dtype=np.int64)
    teams = np.asarray(team, dtype=np.int64)
    point_speed = (
        speeds(frames, tracks, x, y, fps, max_speed_mps)
        if speed is None
        else np.asarray(speed, dtype=np.float64)
    )
    distances = distance_per_track(frames, tracks, x, y, fps, max_speed_mps)
    ids = np.unique(tracks)
    rows: dict[str, list[float | int]] = {name: [] for name in PLAYER_STATS_SCHEMA.names}
    for track in ids:
        mine = np.flatnonzero(tracks == track)
        mine = mine[np.argsort(frames[mine], kind="stable")]
        values, counts = np.unique(teams[mine], return_counts=True)
        rows["track_id"].append(int(track))
        rows["team"].append(int(values[np.argmax(counts)]))
        rows["frames"].append(int(np.unique(frames[mine]).size))
        rows["distance_m"].append(distances.get(int(track), 0.0))
        rows["max_speed"].append(float(point_speed[mine].max()))
        rows["sprints"].append(
            _count_sprints(frames[mine], point_speed[mine], fps, sprint_speed_mps, sprint_min_s)
        )
    return pa.table(
        {name: pa.array(rows[name], PLAYER_STATS_SCHEMA.field(name).type) for name in rows},
        schema=PLAYER_STATS_SCHEMA,
    )


def _count_sprints(
    frames: npt.NDArray[np.int64],
    speed: npt.NDArray[np.float64],
    fps: float,
    threshold: float,
    min_s: float,
) -> int:
    """Runs of consecutive frames above ``threshold`` lasting at least ``min_s``."""
    fast = speed > threshold
    # A missed frame ends a run: its speed is unknown.
    breaks = np.flatnonzero(~fast[:-1] | ~fast[1:] | (np.diff(frames) != 1)) + 1
    count = 0
    for piece in np.split(np.arange(fast.size), breaks):
        if piece.size and fast[piece[0]] and piece.size / fps >= min_s:
            count += 1
    return count


def write_chunk(
    analytics: AnalyticsStore,
    organization_id: str,
    match_id: str,
    revision: int,
    chunk: int,
    *,
    track_points: pa.Table,
    player_stats: pa.Table,
    team_possession: pa.Table | None = None,
) -> dict[str, int]:
    """Replace one chunk's ``track_points`` and ``player_stats`` rows (and ``team_possession``
    when given).

    Idempotent through `AnalyticsStore.replace_slice`: a retried activity leaves one copy.

    Args:
        analytics: The analytics store.
        organization_id: Tenant id.
        match_id: Match id.
        revision: Processing revision of the match.
        chunk: Chunk index.
        track_points: Rows from `track_points_table`.
        player_stats: Rows from `player_stats_table`.
        team_possession: Rows from `activities.analyze.possession.chunk_possession`; None:
            that table is left as it is.

    Returns:
        Rows written per table.

    Raises:
        ValueError: A table does not have its expected schema.
    """
    written: dict[str, int] = {}
    tables = [
        ("track_points", track_points, TRACK_POINTS_SCHEMA),
        ("player_stats", player_stats, PLAYER_STATS_SCHEMA),
    ]
    if team_possession is not None:
        tables.append(("team_possession", team_possession, TEAM_POSSESSION_SCHEMA))
    for table, data, schema in tables:
        if not data.schema.equals(schema):
            raise ValueError(f"{table} rows have schema {data.schema}, expected {schema}")
        written[table] = analytics.replace_slice(
            table, organization_id, match_id, revision, chunk, data
        )
    return written
