"""Analyze rows: exact schema of the migration, idempotent per-chunk writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from activities.analyze.metrics import speeds
from activities.analyze.rows import (
    PLAYER_STATS_SCHEMA,
    TRACK_POINTS_SCHEMA,
    player_stats_table,
    track_points_table,
    write_chunk,
)
from polyvision.storage.analytics import AnalyticsStore, apply_migrations, open_analytics_store

FPS = 25.0
ORG, MATCH = "org-a", "match-1"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AnalyticsStore]:
    # chDB holds one data directory per process at a time: close before the next test.
    analytics = open_analytics_store(f"chdb://{tmp_path / 'chdb'}")
    try:
        apply_migrations(analytics)
        yield analytics
    finally:
        analytics.close()


def chunk_points(first_frame: int = 0, frames: int = 250):
    """Two players: track 1 (team 0) runs at 5 m/s then sprints at 8 m/s; track 2 stands."""
    frame = np.arange(first_frame, first_frame + frames)
    t = (frame - first_frame) / FPS
    x1 = np.where(t < 5, 10 + 5 * t, 35 + 8 * (t - 5))
    tracks = np.concatenate([np.full(frames, 1), np.full(frames, 2)])
    return {
        "frame": np.concatenate([frame, frame]),
        "track_id": tracks,
        "team": np.concatenate([np.zeros(frames, np.int8), np.ones(frames, np.int8)]),
        "x": np.concatenate([x1, np.full(frames, 60.0)]),
        "y": np.concatenate([np.full(frames, 20.0), np.full(frames, 40.0)]),
    }


def tables(points):
    speed = speeds(points["frame"], points["track_id"], points["x"], points["y"], FPS)
    track_points = track_points_table(
        points["frame"], points["track_id"], points["team"], points["x"], points["y"], speed
    )
    stats = player_stats_table(
        points["frame"], points["track_id"], points["team"], points["x"], points["y"], FPS, speed
    )
    return track_points, stats


def migration_columns(store: AnalyticsStore, table: str) -> dict[str, str]:
    result = store.query_numpy(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase()"
        " AND table = {table:String}",
        {"table": table},
    )
    return dict(zip(result["name"], result["type"], strict=True))


def test_tables_match_the_migration(store: AnalyticsStore) -> None:
    clickhouse_types = {
        pa.uint32(): "UInt32",
        pa.uint16(): "UInt16",
        pa.int8(): "Int8",
        pa.float32(): "Float32",
    }
    for table, schema in (
        ("track_points", TRACK_POINTS_SCHEMA),
        ("player_stats", PLAYER_STATS_SCHEMA),
    ):
        columns = migration_columns(store, table)
        for field in schema:
            assert columns[field.name] == clickhouse_types[field.type], (table, field.name)
        # Everything else is a slice key or has a default.
        rest = set(columns) - set(schema.names)
        assert rest == {"organization_id", "match_id", "revision", "chunk", "ingested_at"}


def test_player_stats_values() -> None:
    _, stats = tables(chunk_points())
    assert stats.schema.equals(PLAYER_STATS_SCHEMA)
    rows = {row["track_id"]: row for row in stats.to_pylist()}
    assert rows[1]["team"] == 0 and rows[2]["team"] == 1
    assert rows[1]["frames"] == rows[2]["frames"] == 250
    # 5 s at 5 m/s then 249 - 125 frames at 8 m/s.
    assert rows[1]["distance_m"] == pytest.approx(25 + 8 * 124 / FPS, rel=0.01)
    # The quadratic smoother overshoots an instantaneous change of pace by a few percent.
    assert rows[1]["max_speed"] == pytest.approx(8.0, rel=0.05)
    assert rows[1]["sprints"] == 1
    assert rows[2]["distance_m"] == pytest.approx(0.0, abs=1e-6)
    assert rows[2]["sprints"] == 0


def test_track_points_reject_values_outside_their_types() -> None:
    with pytest.raises(pa.ArrowInvalid):
        track_points_table([-1], [1], [0], [1.0], [1.0], [0.0])


def test_writing_a_chunk_twice_does_not_duplicate(store: AnalyticsStore) -> None:
    track_points, stats = tables(chunk_points())
    other_points, other_stats = tables(chunk_points(first_frame=250))
    write_chunk(store, ORG, MATCH, 1, 1, track_points=other_points, player_stats=other_stats)
    for _ in range(2):
        written = write_chunk(
            store, ORG, MATCH, 1, 0, track_points=track_points, player_stats=stats
        )
        assert written == {"track_points": 500, "player_stats": 2}

    counts = store.query_numpy(
        "SELECT chunk, count() AS n FROM track_points WHERE organization_id = {org:String}"
        " AND match_id = {match:String} GROUP BY chunk ORDER BY chunk",
        {"org": ORG, "match": MATCH},
    )
    assert counts["chunk"].tolist() == [0, 1]
    assert counts["n"].tolist() == [500, 500]
    stats_rows = store.query_numpy(
        "SELECT track_id, count() AS n, sum(distance_m) AS d FROM player_stats"
        " WHERE match_id = {match:String} AND chunk = 0 GROUP BY track_id ORDER BY track_id",
        {"match": MATCH},
    )
    assert stats_rows["n"].tolist() == [1, 1]
    assert stats_rows["d"][0] == pytest.approx(stats.column("distance_m")[0].as_py())

    stored = store.query_numpy(
        "SELECT frame, track_id, team, pitch_x, speed FROM track_points"
        " WHERE chunk = 0 ORDER BY track_id, frame"
    )
    assert stored["team"].dtype == np.int8
    assert stored["speed"][:250] == pytest.approx(
        track_points.column("speed").to_numpy()[:250], abs=1e-6
    )


def test_write_chunk_rejects_a_wrong_schema(store: AnalyticsStore) -> None:
    track_points, stats = tables(chunk_points())
    wrong = track_points.set_column(0, "frame", track_points.column("frame").cast(pa.int64()))
    with pytest.raises(ValueError, match="schema"):
        write_chunk(store, ORG, MATCH, 1, 0, track_points=wrong, player_stats=stats)
