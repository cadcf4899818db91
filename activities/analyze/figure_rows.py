"""The match figures as analytics rows: the tables of migration 0005, as Arrow tables.

Column names and types follow ``polyvision/storage/analytics/migrations/0005_match_figures.sql``;
the key columns (organization, match, revision) are left out because
`AnalyticsStore.replace_revision` adds them. The heatmap and per-minute event tables are filled
by the database's materialized views from ``match_player_cells`` and ``match_events``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from activities.analyze.figures import MatchFigures
from polyvision.storage.analytics import AnalyticsStore

PLAYER_FIGURES_SCHEMA = pa.schema(
    [
        ("identity_id", pa.uint32()),
        ("team", pa.int8()),
        ("role", pa.int8()),
        ("player", pa.string()),
        ("track_ids", pa.list_(pa.uint32())),
        ("seconds", pa.float32()),
        ("distance_m", pa.float32()),
        ("top_speed", pa.float32()),
        ("walk_s", pa.float32()),
        ("jog_s", pa.float32()),
        ("run_s", pa.float32()),
        ("high_s", pa.float32()),
        ("sprint_s", pa.float32()),
        ("sprints", pa.uint16()),
    ]
)

TEAM_MINUTES_SCHEMA = pa.schema(
    [
        ("team", pa.int8()),
        ("minute", pa.uint16()),
        ("in_play_frames", pa.uint32()),
        ("possession_frames", pa.uint32()),
        ("shape_samples", pa.uint32()),
        ("centroid_x", pa.float32()),
        ("centroid_y", pa.float32()),
        ("width_m", pa.float32()),
        ("depth_m", pa.float32()),
        ("compactness_m", pa.float32()),
        ("hull_area_m2", pa.float32()),
    ]
)

EVENTS_SCHEMA = pa.schema(
    [
        ("frame", pa.uint32()),
        ("minute", pa.uint16()),
        ("kind", pa.string()),
        ("team", pa.int8()),
        ("from_identity", pa.int32()),
        ("to_identity", pa.int32()),
        ("x", pa.float32()),
        ("y", pa.float32()),
        ("to_x", pa.float32()),
        ("to_y", pa.float32()),
        ("completed", pa.uint8()),
    ]
)

PLAYER_CELLS_SCHEMA = pa.schema(
    [
        ("identity_id", pa.uint32()),
        ("team", pa.int8()),
        ("minute", pa.uint16()),
        ("cell_x", pa.uint8()),
        ("cell_y", pa.uint8()),
        ("frames", pa.uint32()),
    ]
)


def _table(columns: Mapping[str, Any], schema: pa.Schema) -> pa.Table:
    # pyarrow's conversion is checked: a value out of its column's range raises.
    return pa.table([pa.array(columns[field.name], field.type) for field in schema], schema=schema)


def player_figures_table(figures: MatchFigures) -> pa.Table:
    """``match_player_figures``: one row per player identity."""
    players = figures.players
    zones = [[p.movement.zone_seconds[k] for p in players] for k in range(5)]
    return _table(
        {
            "identity_id": [p.identity for p in players],
            "team": [p.team for p in players],
            "role": [p.role for p in players],
            "player": [p.player or "" for p in players],
            "track_ids": [list(p.tracks) for p in players],
            "seconds": [p.movement.seconds for p in players],
            "distance_m": [p.movement.distance_m for p in players],
            "top_speed": [p.movement.top_speed_mps for p in players],
            "walk_s": zones[0],
            "jog_s": zones[1],
            "run_s": zones[2],
            "high_s": zones[3],
            "sprint_s": zones[4],
            "sprints": [p.movement.sprints for p in players],
        },
        PLAYER_FIGURES_SCHEMA,
    )


def team_minutes_table(figures: MatchFigures) -> pa.Table:
    """``match_team_minutes``: possession and shape per team and minute."""
    rows = figures.team_minutes
    nan = float("nan")

    def shape_column(name: str) -> list[object]:
        return [getattr(m.shape, name) if m.shape is not None else nan for m in rows]

    return _table(
        {
            "team": [m.team for m in rows],
            "minute": [m.minute for m in rows],
            "in_play_frames": [m.in_play_frames for m in rows],
            "possession_frames": [m.possession_frames for m in rows],
            "shape_samples": [m.shape.samples if m.shape is not None else 0 for m in rows],
            "centroid_x": shape_column("centroid_x"),
            "centroid_y": shape_column("centroid_y"),
            "width_m": shape_column("width_m"),
            "depth_m": shape_column("depth_m"),
            "compactness_m": shape_column("compactness_m"),
            "hull_area_m2": shape_column("hull_area_m2"),
        },
        TEAM_MINUTES_SCHEMA,
    )


def events_table(figures: MatchFigures) -> pa.Table:
    """``match_events``: passes, possession changes, out of play and restarts."""
    events = figures.events
    minute_frames = 60.0 * figures.fps
    return _table(
        {
            "frame": [e.frame for e in events],
            "minute": [int((e.frame - figures.first_frame) // minute_frames) for e in events],
            "kind": [e.kind for e in events],
            "team": [e.team for e in events],
            "from_identity": [e.from_identity for e in events],
            "to_identity": [e.to_identity for e in events],
            "x": [e.xy[0] for e in events],
            "y": [e.xy[1] for e in events],
            "to_x": [e.to_xy[0] for e in events],
            "to_y": [e.to_xy[1] for e in events],
            "completed": [int(e.completed) for e in events],
        },
        EVENTS_SCHEMA,
    )


def player_cells_table(figures: MatchFigures) -> pa.Table:
    """``match_player_cells``: frames per player, minute and 1 m cell."""
    cells = figures.cells
    return _table(
        {
            "identity_id": cells.identity,
            "team": cells.team,
            "minute": cells.minute,
            "cell_x": cells.cell_x,
            "cell_y": cells.cell_y,
            "frames": cells.frames,
        },
        PLAYER_CELLS_SCHEMA,
    )


def write_figures(
    analytics: AnalyticsStore,
    organization_id: str,
    match_id: str,
    revision: int,
    figures: MatchFigures,
) -> dict[str, int]:
    """Replace a match revision's figure rows (idempotent: `AnalyticsStore.replace_revision`).

    Returns:
        Rows written per table.
    """
    tables = {
        "match_player_figures": player_figures_table(figures),
        "match_team_minutes": team_minutes_table(figures),
        "match_events": events_table(figures),
        "match_player_cells": player_cells_table(figures),
    }
    return {
        name: analytics.replace_revision(name, organization_id, match_id, revision, table)
        for name, table in tables.items()
    }
