"""The analyze activity: speeds written back, stats per chunk, heatmaps, manifest, resume."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from activities.analyze.activity import AnalyzeActivities
from activities.analyze.contracts import AnalyzeChunk, AnalyzeInput
from activities.analyze.rows import track_points_table
from activities.track.ball_points import ball_points_table
from activities.track.ball_track import BallTrack
from polyvision.storage.analytics import AnalyticsStore, apply_migrations, open_analytics_store
from polyvision.storage.objects import ObjectStore, open_object_store

FPS = 25.0
CHUNKS = [AnalyzeChunk(0, 0, 25), AnalyzeChunk(1, 25, 25), AnalyzeChunk(2, 50, 25)]
SPEED = 4.0  # metres per second, along x
# Track id -> (team, start x, start y); track 5 (the referee) only appears in chunk 1.
TRACKS = {1: (0, 10.0, 10.0), 2: (0, 10.0, 30.0), 3: (1, 60.0, 20.0), 4: (1, 60.0, 50.0)}


@pytest_asyncio.fixture
async def objects(tmp_path: Path) -> AsyncIterator[ObjectStore]:
    store = open_object_store(
        f"file://{tmp_path / 'objects'}", secret=b"s" * 32, public_base_url="http://t"
    )
    async with store:
        yield store


@pytest.fixture
def analytics(tmp_path: Path) -> Iterator[AnalyticsStore]:
    with open_analytics_store(f"chdb://{tmp_path / 'analytics'}") as store:
        apply_migrations(store)
        yield store


def _write_track_points(analytics: AnalyticsStore) -> int:
    """Players running straight at `SPEED`, as the track stage writes them (speed unset)."""
    total = 0
    for chunk in CHUNKS:
        rows: list[tuple[int, int, int, float, float]] = []
        for f in range(chunk.first_frame, chunk.first_frame + chunk.frames):
            for track_id, (side, x0, y0) in TRACKS.items():
                rows.append((f, track_id, side, x0 + SPEED * f / FPS, y0))
            if chunk.chunk == 1:
                rows.append((f, 5, -1, 52.5, 34.0))
        frame, track, team, x, y = (list(column) for column in zip(*rows, strict=True))
        total += len(frame)
        analytics.replace_slice(
            "track_points",
            "o1",
            "m1",
            1,
            chunk.chunk,
            track_points_table(frame, track, team, x, y, np.zeros(len(frame))),
        )
    return total


def _input() -> AnalyzeInput:
    return AnalyzeInput("o1", "m1", 1, CHUNKS, FPS)


def _points(analytics: AnalyticsStore) -> dict[str, np.ndarray]:
    return analytics.query_numpy(
        "SELECT chunk, frame, track_id, team, pitch_x, pitch_y, speed FROM track_points "
        "WHERE organization_id = 'o1' AND match_id = 'm1' ORDER BY frame, track_id"
    )


def _stats(analytics: AnalyticsStore) -> dict[str, np.ndarray]:
    return analytics.query_numpy(
        "SELECT chunk, track_id, team, frames, distance_m, max_speed FROM player_stats "
        "WHERE organization_id = 'o1' AND match_id = 'm1' ORDER BY chunk, track_id"
    )


async def test_speeds_stats_distance_and_heatmaps_then_the_manifest_answers(
    objects: ObjectStore, analytics: AnalyticsStore
) -> None:
    points_written = _write_track_points(analytics)
    acts = AnalyzeActivities(objects, analytics)
    output = await ActivityEnvironment().run(acts.analyze, _input())
    assert output.tracks == 5 and not output.from_manifest
    # Each chunk counts 24 steps of 4 m/s per runner (the step across a chunk cut is in none).
    assert output.total_distance_m == pytest.approx(3 * 4 * 24 * SPEED / FPS, rel=1e-5)

    points = _points(analytics)
    assert len(points["frame"]) == points_written  # rewritten in place, not duplicated
    runners = points["track_id"] != 5
    np.testing.assert_allclose(points["speed"][runners], SPEED, rtol=1e-4)
    np.testing.assert_allclose(points["speed"][~runners], 0.0, atol=1e-6)

    stats = _stats(analytics)
    assert len(stats["chunk"]) == 3 * 4 + 1
    np.testing.assert_allclose(
        stats["distance_m"][stats["track_id"] != 5], 24 * SPEED / FPS, rtol=1e-5
    )
    assert set(stats["team"][stats["track_id"] == 3]) == {1}

    assert output.heatmaps_key == "orgs/o1/matches/m1/1/analyze/heatmaps.json"
    heatmaps = json.loads(await objects.get(output.heatmaps_key))
    assert heatmaps["shape"] == [20, 16] and set(heatmaps["teams"]) == {"-1", "0", "1"}
    assert np.asarray(heatmaps["teams"]["0"]).shape == (20, 16)
    assert np.asarray(heatmaps["teams"]["0"]).sum() == 2 * 75
    assert np.asarray(heatmaps["teams"]["-1"]).sum() == 25

    again = await ActivityEnvironment().run(acts.analyze, _input())
    assert again.from_manifest and again.total_distance_m == output.total_distance_m

    # Without the manifest the work is redone and every slice replaced, not duplicated.
    await objects.delete(output.manifest_key)
    redone = await ActivityEnvironment().run(acts.analyze, _input())
    assert not redone.from_manifest and redone.total_distance_m == output.total_distance_m
    assert len(_points(analytics)["frame"]) == points_written
    assert len(_stats(analytics)["chunk"]) == 3 * 4 + 1


async def test_resumes_after_the_last_finished_chunk_with_the_same_result(
    objects: ObjectStore, analytics: AnalyticsStore
) -> None:
    _write_track_points(analytics)
    acts = AnalyzeActivities(objects, analytics)
    heartbeats: list[tuple[Any, ...]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: heartbeats.append(details)
    output = await env.run(acts.analyze, _input())
    assert [h[0]["chunks_done"] for h in heartbeats] == [1, 2, 3]
    heatmaps = await objects.get(output.heatmaps_key)
    uninterrupted = _points(analytics)

    # A worker died after chunk 0: its heartbeat (through JSON, as Temporal stores it) is all
    # the next attempt gets.
    await objects.delete(output.manifest_key)
    await objects.delete(output.heatmaps_key)
    after_first = json.loads(json.dumps(heartbeats[0]))
    resumed_heartbeats: list[tuple[Any, ...]] = []
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_details=after_first)
    env.on_heartbeat = lambda *details: resumed_heartbeats.append(details)
    resumed = await env.run(acts.analyze, _input())
    assert [h[0]["chunks_done"] for h in resumed_heartbeats] == [2, 3]  # chunk 0 not redone
    assert (resumed.tracks, resumed.total_distance_m) == (output.tracks, output.total_distance_m)
    assert await objects.get(output.heatmaps_key) == heatmaps
    for column, values in _points(analytics).items():
        np.testing.assert_array_equal(values, uninterrupted[column])


def _write_ball(analytics: AnalyticsStore, last_chunk_visible_to: int = 70) -> None:
    """Chunk 0: at runner 1's feet (team 0); chunk 1: by the referee only, in the air from
    frame 40; chunk 2: at runner 3's feet (team 1), lost from frame ``last_chunk_visible_to``."""
    frames = np.arange(75)
    xy = np.zeros((75, 2))
    z = np.full(75, 0.11)
    for f in frames:
        if f < 25:
            xy[f] = (10.0 + SPEED * f / FPS, 10.5)
        elif f < 50:
            xy[f] = (52.5, 34.5)
            z[f] = 3.0 if f >= 40 else 0.11
        else:
            xy[f] = (60.0 + SPEED * f / FPS, 20.5)
    visible = frames < last_chunk_visible_to
    track = BallTrack(
        frame=frames.astype(np.int64),
        xy=xy,
        z=z,
        visible=visible,
        observed=visible,
        in_play=visible,
        confidence=np.where(visible, 0.9, 0.0),
    )
    for chunk in CHUNKS:
        part = track.slice_frames(chunk.first_frame, chunk.first_frame + chunk.frames)
        analytics.replace_slice("ball_points", "o1", "m1", 1, chunk.chunk, ball_points_table(part))


def _possession(analytics: AnalyticsStore) -> list[tuple[int, int, int]]:
    rows = analytics.query_numpy(
        "SELECT chunk, team, frames FROM team_possession "
        "WHERE organization_id = 'o1' AND match_id = 'm1' ORDER BY chunk, team"
    )
    if not rows:
        return []
    return [
        (int(c), int(t), int(n))
        for c, t, n in zip(rows["chunk"], rows["team"], rows["frames"], strict=True)
    ]


async def test_possession_per_chunk_from_the_ball_and_a_changed_ball_redoes_it(
    objects: ObjectStore, analytics: AnalyticsStore
) -> None:
    _write_track_points(analytics)
    acts = AnalyzeActivities(objects, analytics)
    # A revision tracked before the ball: no possession rows, the rest as before.
    before = await ActivityEnvironment().run(acts.analyze, _input())
    assert _possession(analytics) == []

    _write_ball(analytics)
    output = await ActivityEnvironment().run(acts.analyze, _input())
    assert not output.from_manifest  # the ball is an input
    assert output.total_distance_m == before.total_distance_m
    # Chunk 1: the referee (team -1) is not a player, and the lofted frames 40-49 do not count.
    assert _possession(analytics) == [(0, 0, 25), (1, -2, 15), (2, 1, 20)]

    _write_ball(analytics, last_chunk_visible_to=60)
    again = await ActivityEnvironment().run(acts.analyze, _input())
    assert not again.from_manifest
    assert _possession(analytics) == [(0, 0, 25), (1, -2, 15), (2, 1, 10)]


async def test_match_figures_rows_and_summary_follow_the_analysts_overrides(
    objects: ObjectStore, analytics: AnalyticsStore
) -> None:
    _write_track_points(analytics)
    _write_ball(analytics)
    acts = AnalyzeActivities(objects, analytics)
    output = await ActivityEnvironment().run(acts.analyze, _input())
    assert output.figures_key == "orgs/o1/matches/m1/1/analyze/figures.json"
    assert output.players == 4  # the referee is not a player
    summary = json.loads(await objects.get(output.figures_key))
    assert [p["identity"] for p in summary["players"]] == [1, 2, 3, 4]
    runner = summary["players"][0]
    assert runner["distance_m"] == pytest.approx(SPEED * 74 / FPS, rel=0.01)
    assert summary["teams"]["0"]["possession_share"] > 0.0

    def players() -> list[int]:
        rows = analytics.query_numpy(
            "SELECT identity_id FROM match_player_figures "
            "WHERE organization_id = 'o1' AND match_id = 'm1' ORDER BY identity_id"
        )
        return [int(v) for v in rows["identity_id"]]

    assert players() == [1, 2, 3, 4]
    # The analyst merges tracks 1 and 2: the new overrides redo the figures (not the manifest).
    await objects.put("orgs/o1/overrides.json", json.dumps({"merges": [[1, 2]]}).encode())
    merged = await ActivityEnvironment().run(
        acts.analyze, dataclasses.replace(_input(), overrides_key="orgs/o1/overrides.json")
    )
    assert not merged.from_manifest and merged.players == 3
    assert players() == [1, 3, 4]
