"""Exporting a processed match's results from the stores, in `polyvision eval`'s format.

Tracks come from the analytics store's `track_points` (pitch metres), the ball from its
`ball_points`; the virtual camera's ground quads from its path and the panorama model in the
object store. Detections stay out:
they are in panorama pixels, and the synthetic truth has boxes only in the camera images.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow.parquet as pq

from activities.stitch.panorama import PanoramaModel, panorama_to_pitch
from activities.track.ball_points import MatchRevision, read_ball_track
from activities.vcam.contracts import DEFAULT_VIEW_SIZE
from activities.vcam.plan import VcamPath, ground_quads
from activities.vcam.view import geometry_of, view_corners
from evaluation.formats import BallResults, Results, StrArray, Tracks, VcamQuads, write_results
from polyvision.artifacts import artifact_key
from polyvision.roles import ROLE_NAMES, ROLE_REFEREE, TEAM_NAMES, UNKNOWN
from polyvision.settings import Settings
from polyvision.storage.analytics import AnalyticsStore, open_analytics_store
from polyvision.storage.objects import ObjectNotFound, ObjectStore, open_object_store

# Wide enough for every name, so that the referee's team fits in the teams array.
_NAME_WIDTH = max(len(n) for n in [UNKNOWN, "referee", *TEAM_NAMES.values(), *ROLE_NAMES.values()])


def _names(codes: npt.ArrayLike, names: dict[int, str]) -> StrArray:
    # One pass per known code instead of a Python call per row: a match has millions of points.
    values = np.asarray(codes, dtype=np.int64)
    out = np.full(values.shape, UNKNOWN, dtype=f"<U{_NAME_WIDTH}")
    for code, name in names.items():
        out[values == code] = name
    return out


def track_names(team: npt.ArrayLike, role: npt.ArrayLike) -> tuple[StrArray, StrArray]:
    """The evaluation's team and role names of `track_points` codes (`polyvision.roles`).

    A referee track's team reads ``referee`` whatever its team code: the referee belongs to
    neither side (the track stage writes -1 for them), and the results format names the referee
    as a team, so that the team-only accuracy can score the referee's track as right.
    """
    teams, roles = _names(team, TEAM_NAMES), _names(role, ROLE_NAMES)
    teams[roles == ROLE_NAMES[ROLE_REFEREE]] = "referee"
    return teams, roles


def export_tracks(
    analytics: AnalyticsStore, organization_id: str, match_id: str, revision: int
) -> Tracks:
    """The match's track points as evaluation tracks, with their team and role names."""
    rows = analytics.query_numpy(
        "SELECT frame, track_id, team, role, pitch_x, pitch_y FROM track_points "
        "WHERE organization_id = {org:String} AND match_id = {match:String} "
        "AND revision = {revision:UInt32} ORDER BY frame, track_id",
        {"org": organization_id, "match": match_id, "revision": revision},
    )
    teams, roles = track_names(rows["team"], rows["role"])
    return Tracks(
        frame=rows["frame"].astype(np.int32),
        track_id=rows["track_id"].astype(np.int32),
        team=teams,
        position=np.column_stack([rows["pitch_x"], rows["pitch_y"]]).astype(np.float32),
        role=roles,
    )


def export_ball(
    analytics: AnalyticsStore, organization_id: str, match_id: str, revision: int
) -> BallResults | None:
    """The match's ball track, one row per frame, or None when it has no ``ball_points`` rows
    (a revision processed before the ball was tracked)."""
    track = read_ball_track(analytics, MatchRevision(organization_id, match_id, revision))
    if not len(track):
        return None
    return BallResults(
        frame=track.frame.astype(np.int32),
        position=np.column_stack([track.xy, track.z]).astype(np.float32),
        visible=track.visible.copy(),
        in_play=track.in_play.copy(),
    )


async def export_vcam(
    objects: ObjectStore, organization_id: str, match_id: str, revision: int
) -> VcamQuads | None:
    """The virtual camera's view of the pitch per frame, or None when it was not planned."""
    try:
        path_data = await objects.get(
            artifact_key(organization_id, match_id, revision, "vcam", "path.parquet")
        )
        model_data = await objects.get(
            artifact_key(organization_id, match_id, revision, "stitch", "panorama.json")
        )
    except ObjectNotFound:
        return None
    table = pq.read_table(io.BytesIO(path_data))
    path = VcamPath.from_table(table)
    model = PanoramaModel.from_json(model_data.decode())
    geometry = geometry_of(table)
    if geometry is None:  # a path planned as crops of the panorama
        quads = ground_quads(path, lambda pixels: panorama_to_pitch(model, pixels))
    else:  # the rectilinear view: its corners' ground points (exact for a pinhole view)
        corners = view_corners(geometry, path.cx, path.cy, path.width, DEFAULT_VIEW_SIZE)
        ground = panorama_to_pitch(model, corners.reshape(-1, 2))
        quads = ground.reshape(-1, 4, 2).astype(np.float32)
    return VcamQuads(frame=np.arange(len(quads), dtype=np.int32), quad=quads.astype(np.float32))


async def export_match(
    settings: Settings, organization_id: str, match_id: str, revision: int, out_dir: Path
) -> Results:
    """Write ``tracks.parquet``, ``ball.parquet`` and ``vcam.parquet`` of a processed match
    into ``out_dir`` (the ball and the camera only where the match has them)."""
    with open_analytics_store(settings.analytics_url) as analytics:
        tracks = await asyncio.to_thread(
            export_tracks, analytics, organization_id, match_id, revision
        )
        ball = await asyncio.to_thread(export_ball, analytics, organization_id, match_id, revision)
    async with open_object_store(
        settings.objects_url, secret=settings.secret, public_base_url=settings.api_public_url
    ) as objects:
        vcam = await export_vcam(objects, organization_id, match_id, revision)
    results = Results(tracks=tracks, vcam=vcam, ball=ball)
    write_results(results, out_dir)
    return results
