"""Response bodies of the analytics endpoints."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_MATCH = "7b0c1a52-3f1e-4c55-9d7e-2a8f6b1c0d11"
_GRID_EXAMPLE: list[Any] = [[0] * 7 for _ in range(9)] + [[1, 0, 0, 2, 0, 0, 0]]


class TrackSeries(BaseModel):
    """The points of one track in the requested window."""

    track_id: int
    team: int = Field(
        description="1 home, 0 away; -1 unknown, referee or ball. The team of most of the points."
    )
    points: list[tuple[float, float, float, float | None]] = Field(
        description="[t, x, y, speed]: seconds from the start, pitch metres (x along the"
        " length, y across), metres per second (null when unknown)."
    )


class TracksResponse(BaseModel):
    """Track points of one match revision in a time window."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "match_id": _MATCH,
                    "revision": 1,
                    "fps": 25.0,
                    "note": None,
                    "start_s": 60.0,
                    "end_s": 60.08,
                    "tracks": [
                        {
                            "track_id": 7,
                            "team": 0,
                            "points": [[60.0, 40.5, 22.25, 5.1], [60.04, 40.7, 22.25, 5.0]],
                        }
                    ],
                }
            ]
        }
    )

    match_id: uuid.UUID
    revision: int
    fps: float
    note: str | None = Field(default=None, description="Set when the frame rate is assumed.")
    start_s: float
    end_s: float
    tracks: list[TrackSeries]


class HeatmapResponse(BaseModel):
    """Where one team's points were, counted per pitch cell."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "match_id": _MATCH,
                    "revision": 1,
                    "team": 0,
                    "pitch_m": [105.0, 68.0],
                    "cell_m": [10.5, 9.714285714285714],
                    "shape": [10, 7],
                    "total": 3,
                    "grid": _GRID_EXAMPLE,
                }
            ]
        }
    )

    match_id: uuid.UUID
    revision: int
    team: int
    pitch_m: tuple[float, float] = Field(description="Pitch length and width in metres.")
    cell_m: tuple[float, float] = Field(
        description="Actual cell length and width: the nearest size that tiles the pitch."
    )
    shape: tuple[int, int] = Field(description="Cells along x (length) and y (width).")
    total: int = Field(description="Points counted in the grid.")
    grid: list[list[int]] = Field(description="Point counts indexed [ix][iy].")


class PlayerStats(BaseModel):
    """One track's statistics summed over the match's chunks."""

    track_id: int
    team: int = Field(
        description="The team the track was seen with in most frames: 1 home, 0 away, -1 none."
    )
    frames: int
    minutes_played: float = Field(description="Frames seen divided by the frame rate.")
    distance_m: float
    max_speed: float = Field(description="Metres per second.")
    sprints: int


class PlayersResponse(BaseModel):
    """Per-track statistics of one match revision."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "match_id": _MATCH,
                    "revision": 1,
                    "fps": 25.0,
                    "note": None,
                    "players": [
                        {
                            "track_id": 7,
                            "team": 0,
                            "frames": 135000,
                            "minutes_played": 90.0,
                            "distance_m": 10234.5,
                            "max_speed": 8.9,
                            "sprints": 21,
                        }
                    ],
                }
            ]
        }
    )

    match_id: uuid.UUID
    revision: int
    fps: float
    note: str | None = Field(default=None, description="Set when the frame rate is assumed.")
    players: list[PlayerStats]


class PossessionMinute(BaseModel):
    """One team's possession in one minute of the match."""

    minute: int = Field(description="Minute of the match, 0 from its first frame.")
    possession_frames: int = Field(description="Frames of the minute this team had the ball.")
    in_play_frames: int = Field(description="Frames of the minute the ball was in play.")


class TeamStats(BaseModel):
    """One team's totals over the tracks assigned to it."""

    team: int
    tracks: int = Field(
        description="Distinct tracks: a player whose track was lost and found again counts"
        " more than once."
    )
    minutes_played: float = Field(description="Sum over the team's tracks.")
    distance_m: float
    mean_speed: float = Field(
        description="Metres per second: the team's distance over its tracks' time on the pitch."
    )
    max_speed: float = Field(description="Metres per second, the fastest of the team's tracks.")
    sprints: int
    possession_frames: int = Field(
        default=0,
        description="Frames in which only this team's players were within reach of the ball"
        " (the ball seen, in play and low).",
    )
    possession_share: float | None = Field(
        default=None,
        description="This team's possession frames over both teams' (contested frames and"
        " frames nobody had the ball left out); null when neither team had the ball, as for a"
        " match processed before the ball was tracked.",
    )
    possession_minutes: list[PossessionMinute] = Field(
        default_factory=list,
        description="Possession per minute (with hysteresis, out of play left out); empty for"
        " a match analysed before per-minute figures existed.",
    )


class TeamsResponse(BaseModel):
    """Per-team totals of one match revision (teams 0 and 1)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "match_id": _MATCH,
                    "revision": 1,
                    "fps": 25.0,
                    "note": None,
                    "teams": [
                        {
                            "team": 0,
                            "tracks": 14,
                            "minutes_played": 990.0,
                            "distance_m": 108000.0,
                            "mean_speed": 1.82,
                            "max_speed": 9.1,
                            "sprints": 190,
                            "possession_frames": 61000,
                            "possession_share": 0.5083,
                        },
                        {
                            "team": 1,
                            "tracks": 13,
                            "minutes_played": 985.5,
                            "distance_m": 106500.0,
                            "mean_speed": 1.8,
                            "max_speed": 8.7,
                            "sprints": 176,
                            "possession_frames": 59000,
                            "possession_share": 0.4917,
                        },
                    ],
                }
            ]
        }
    )

    match_id: uuid.UUID
    revision: int
    fps: float
    note: str | None = Field(default=None, description="Set when the frame rate is assumed.")
    teams: list[TeamStats]


class BallResponse(BaseModel):
    """The ball of one match revision in a time window: the frames where its position is known."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "match_id": _MATCH,
                    "revision": 1,
                    "fps": 25.0,
                    "note": None,
                    "start_s": 60.0,
                    "end_s": 60.08,
                    "points": [
                        [60.0, 40.5, 22.25, 0.11, True, True, 0.93],
                        [60.04, 41.1, 22.4, 0.35, False, True, 0.6],
                    ],
                }
            ]
        }
    )

    match_id: uuid.UUID
    revision: int
    fps: float
    note: str | None = Field(default=None, description="Set when the frame rate is assumed.")
    start_s: float
    end_s: float
    points: list[tuple[float, float, float, float, bool, bool, float]] = Field(
        description="[t, x, y, z, observed, in_play, confidence]: seconds from the start, pitch"
        " metres of the grass under the ball (x along the length, y across), the ball's height"
        " in metres, whether a detection supports the position (false: bridged between two"
        " sightings), whether the ball is in play, and the tracker's confidence (0..1). Frames"
        " without a point are frames where the ball's position is not known."
    )
