"""The vcam activities: a path planned from track points, views rendered per chunk, manifests."""

from __future__ import annotations

import io
import math
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.analyze.rows import track_points_table
from activities.stitch.panorama import PanoramaModel, pitch_to_panorama
from activities.track.ball_points import ball_points_table
from activities.track.ball_track import BallTrack
from activities.vcam.activity import VcamActivities
from activities.vcam.contracts import (
    CameraSettings,
    Rendition,
    VcamChunk,
    VcamPlanInput,
    VcamRenderInput,
)
from activities.vcam.plan import VcamPath
from activities.vcam.view import ViewGeometry, geometry_of, render_view_remap
from polyvision.media.writer import VideoWriter
from polyvision.storage.analytics import AnalyticsStore, apply_migrations, open_analytics_store
from polyvision.storage.objects import ObjectStore, open_object_store

FPS = 25.0
CHUNKS = [VcamChunk(0, 0, 25), VcamChunk(1, 25, 25)]
VIEW = (320, 180)
# A small cylindrical panorama looking across the pitch from behind the near touchline.
MODEL = PanoramaModel(
    width=640,
    height=192,
    center=(52.5, -15.0, 12.0),
    heading_rad=math.pi / 2,
    focal_px=237.0,
    cu=319.5,
    cv=-19.0,
    far_wall_y_m=78.0,
    pitch_length_m=105.0,
    pitch_width_m=68.0,
)
MODEL_KEY = "orgs/o1/matches/m1/1/stitch/panorama.json"


def _panorama_frame(index: int) -> np.ndarray:
    """A textured panorama (so views differ by position) with a moving bright bar."""
    yy, xx = np.mgrid[0 : MODEL.height, 0 : MODEL.width]
    image = np.stack([xx % 256, (3 * yy) % 256, (xx + 2 * yy) % 256], axis=-1).astype(np.uint8)
    image[:, 4 * index : 4 * index + 8] = 255
    return image


@pytest.fixture(scope="module")
def panorama_chunks(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("panorama")
    paths = []
    for chunk in CHUNKS:
        path = out / f"chunk-{chunk.chunk:05d}.mp4"
        with VideoWriter(path, MODEL.width, MODEL.height, FPS) as writer:
            for offset in range(chunk.frames):
                writer.write(_panorama_frame(chunk.first_frame + offset))
        paths.append(path)
    return paths


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


def _players(frame: int) -> np.ndarray:
    """Ten players around (30 + 0.2 * frame, 34) metres: the play drifts towards the right."""
    angles = np.linspace(0, 2 * np.pi, 10, endpoint=False)
    return np.column_stack([30.0 + 0.2 * frame + 6 * np.cos(angles), 34.0 + 8 * np.sin(angles)])


def _write_track_points(analytics: AnalyticsStore) -> None:
    for chunk in CHUNKS:
        frames = np.arange(chunk.first_frame, chunk.first_frame + chunk.frames)
        xy = np.concatenate([_players(int(f)) for f in frames])
        count = len(xy)
        analytics.replace_slice(
            "track_points",
            "o1",
            "m1",
            1,
            chunk.chunk,
            track_points_table(
                np.repeat(frames, 10),
                np.tile(np.arange(1, 11), len(frames)),
                np.zeros(count, np.int8),
                xy[:, 0],
                xy[:, 1],
                np.zeros(count),
            ),
        )


async def _plan_input(objects: ObjectStore) -> VcamPlanInput:
    await objects.put(MODEL_KEY, MODEL.to_json().encode())
    return VcamPlanInput("o1", "m1", 1, CHUNKS, MODEL_KEY, FPS)


async def _render_input(
    objects: ObjectStore, chunk: VcamChunk, video: Path, path_key: str
) -> VcamRenderInput:
    key = f"orgs/o1/matches/m1/1/stitch/chunk-{chunk.chunk:05d}.mp4"
    await objects.upload_file(key, video)
    return VcamRenderInput(
        "o1",
        "m1",
        1,
        chunk.chunk,
        key,
        path_key,
        chunk.first_frame,
        chunk.frames,
        FPS,
        width=VIEW[0],
        height=VIEW[1],
    )


def _recorder(heartbeats: list[tuple[Any, ...]]) -> Callable[..., None]:
    return lambda *details: heartbeats.append(details)


def _decode(path: Path) -> tuple[list[np.ndarray], bool]:
    with av.open(str(path)) as container:
        first_packet = next(p for p in container.demux(video=0) if p.size)
        starts_on_keyframe = bool(first_packet.is_keyframe)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    return frames, starts_on_keyframe


async def test_plan_follows_the_players_in_panorama_pixels_and_answers_from_its_manifest(
    objects: ObjectStore, analytics: AnalyticsStore
) -> None:
    _write_track_points(analytics)
    acts = VcamActivities(objects, analytics)
    output = await ActivityEnvironment().run(acts.plan, await _plan_input(objects))
    assert output.frames == 50 and not output.from_manifest
    assert output.path_key == "orgs/o1/matches/m1/1/vcam/path.parquet"
    table = pq.read_table(io.BytesIO(await objects.get(output.path_key)))
    path = VcamPath.from_table(table)
    assert path.frames == 50
    # The path says how to render it: the panorama's view geometry travels with it.
    assert geometry_of(table) == ViewGeometry.of(MODEL)
    # Every frame's window holds the players' centre, and stays inside the panorama.
    centre = pitch_to_panorama(MODEL, np.array([_players(f).mean(axis=0) for f in range(50)]))
    assert (np.abs(path.cx - centre[:, 0]) < path.width / 2).all()
    assert (np.abs(path.cy - centre[:, 1]) < path.height / 2).all()
    assert (path.cx - path.width / 2 >= -1e-3).all()
    assert (path.cx + path.width / 2 <= MODEL.width + 1e-3).all()

    again = await ActivityEnvironment().run(acts.plan, await _plan_input(objects))
    assert again.from_manifest and again.path_key == output.path_key

    # Other track points are other inputs: the plan is made again.
    analytics.replace_slice(
        "track_points", "o1", "m1", 1, 1, track_points_table([], [], [], [], [], [])
    )
    replanned = await ActivityEnvironment().run(acts.plan, await _plan_input(objects))
    assert not replanned.from_manifest and replanned.frames == 50


async def test_render_writes_each_chunk_from_a_keyframe_and_answers_from_its_manifest(
    objects: ObjectStore, analytics: AnalyticsStore, panorama_chunks: list[Path], tmp_path: Path
) -> None:
    _write_track_points(analytics)
    acts = VcamActivities(objects, analytics)
    plan = await ActivityEnvironment().run(acts.plan, await _plan_input(objects))
    path = VcamPath.from_table(pq.read_table(io.BytesIO(await objects.get(plan.path_key))))
    for chunk, video in zip(CHUNKS, panorama_chunks, strict=True):
        heartbeats: list[tuple[Any, ...]] = []
        env = ActivityEnvironment()
        env.on_heartbeat = _recorder(heartbeats)
        render_input = await _render_input(objects, chunk, video, plan.path_key)
        output = await env.run(acts.render_chunk, render_input)
        # No ladder asked for: the view's own size, then the default rungs that fit (none).
        assert [r.name for r in output.renditions] == ["180p"]
        assert output.video_key == f"orgs/o1/matches/m1/1/vcam/180p/chunk-{chunk.chunk:05d}.mp4"
        assert output.frames == chunk.frames and not output.from_manifest
        assert heartbeats and heartbeats[-1][0] == {"frames_done": chunk.frames}
        info = await objects.stat(output.video_key)
        assert info.sha256 == output.sha256

        local = tmp_path / f"view-{chunk.chunk}.mp4"
        await objects.download_file(output.video_key, local)
        views, starts_on_keyframe = _decode(local)
        assert starts_on_keyframe  # the chunk start is an HLS segment boundary
        assert len(views) == chunk.frames and views[0].shape == (VIEW[1], VIEW[0], 3)
        # The first view is the planned window of the chunk's first match frame (H.264 is lossy).
        f = chunk.first_frame
        expected = render_view_remap(
            _panorama_frame(f),
            ViewGeometry.of(MODEL),
            float(path.cx[f]),
            float(path.cy[f]),
            float(path.width[f]),
            VIEW,
        )
        assert np.abs(views[0].astype(float) - expected).mean() < 12

        again = await ActivityEnvironment().run(acts.render_chunk, render_input)
        assert again.from_manifest and again.sha256 == output.sha256


async def test_render_encodes_every_rendition_in_one_pass_with_keyframes_at_the_same_frames(
    objects: ObjectStore, analytics: AnalyticsStore, panorama_chunks: list[Path], tmp_path: Path
) -> None:
    _write_track_points(analytics)
    acts = VcamActivities(objects, analytics)
    plan = await ActivityEnvironment().run(acts.plan, await _plan_input(objects))
    render_input = await _render_input(objects, CHUNKS[0], panorama_chunks[0], plan.path_key)
    render_input.ladder = [Rendition("top", 320, 180, 800), Rendition("small", 160, 90, 200)]
    render_input.gop_frames = 10
    output = await ActivityEnvironment().run(acts.render_chunk, render_input)
    assert [(r.name, r.width, r.height) for r in output.renditions] == [
        ("top", 320, 180),
        ("small", 160, 90),
    ]
    assert output.video_key == output.renditions[0].video_key
    keyframes = []
    decoded = []
    for rendition in output.renditions:
        assert rendition.video_key == f"orgs/o1/matches/m1/1/vcam/{rendition.name}/chunk-00000.mp4"
        assert rendition.codecs.startswith("avc1.")
        assert (await objects.stat(rendition.video_key)).size == rendition.size
        local = tmp_path / f"{rendition.name}.mp4"
        await objects.download_file(rendition.video_key, local)
        with av.open(str(local)) as container:
            stream = container.streams.video[0]
            frames = [
                (frame.key_frame, frame.to_ndarray(format="bgr24"))
                for frame in container.decode(stream)
            ]
        keyframes.append([i for i, (key, _) in enumerate(frames) if key])
        decoded.append(np.array([image for _, image in frames]))
    # Closed GOPs of 10 frames at the same frames in both: segments cut alike.
    assert keyframes[0] == keyframes[1] == list(range(0, CHUNKS[0].frames, 10))
    # The small rendition is the top one scaled down (both lossy: compare coarsely).
    top_small = np.array(
        [cv2.resize(f, (160, 90), interpolation=cv2.INTER_AREA) for f in decoded[0]]
    )
    assert np.abs(top_small.astype(float) - decoded[1]).mean() < 8


async def test_render_refuses_a_chunk_whose_length_is_not_the_planned_one(
    objects: ObjectStore, analytics: AnalyticsStore, panorama_chunks: list[Path]
) -> None:
    _write_track_points(analytics)
    acts = VcamActivities(objects, analytics)
    plan = await ActivityEnvironment().run(acts.plan, await _plan_input(objects))
    render_input = await _render_input(objects, CHUNKS[0], panorama_chunks[0], plan.path_key)
    render_input.frames = 20
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(acts.render_chunk, render_input)
    assert raised.value.non_retryable
    assert not await objects.exists("orgs/o1/matches/m1/1/vcam/chunk-00000/manifest.json")


def _write_ball(analytics: AnalyticsStore, x: float, *, in_play: bool = True) -> None:
    """The ball at (x, 34) metres, rolling, in every frame; reported unless out of play."""
    frames = sum(chunk.frames for chunk in CHUNKS)
    track = BallTrack(
        frame=np.arange(frames, dtype=np.int64),
        xy=np.tile([x, 34.0], (frames, 1)),
        z=np.full(frames, 0.11),
        visible=np.ones(frames, np.bool_),
        observed=np.ones(frames, np.bool_),
        in_play=np.full(frames, in_play),
        confidence=np.full(frames, 0.9),
    )
    for chunk in CHUNKS:
        part = track.slice_frames(chunk.first_frame, chunk.first_frame + chunk.frames)
        analytics.replace_slice("ball_points", "o1", "m1", 1, chunk.chunk, ball_points_table(part))


async def _plan_path(acts: VcamActivities, objects: ObjectStore) -> tuple[VcamPath, bool]:
    output = await ActivityEnvironment().run(acts.plan, await _plan_input(objects))
    path = VcamPath.from_table(pq.read_table(io.BytesIO(await objects.get(output.path_key))))
    return path, output.from_manifest


async def test_plan_is_pulled_towards_the_reported_ball_and_replans_when_it_changes(
    objects: ObjectStore, analytics: AnalyticsStore
) -> None:
    _write_track_points(analytics)
    acts = VcamActivities(objects, analytics)
    players_only, _ = await _plan_path(acts, objects)  # no ball rows: an older revision

    # A ball out of play is not reported: the camera ignores it (but the rows are new inputs).
    _write_ball(analytics, 90.0, in_play=False)
    out_of_play, from_manifest = await _plan_path(acts, objects)
    assert not from_manifest
    np.testing.assert_allclose(out_of_play.cx, players_only.cx)

    _write_ball(analytics, 90.0)
    with_ball, from_manifest = await _plan_path(acts, objects)
    assert not from_manifest
    # The players are around x = 30..40 m, the ball at 90 m: the aim moves right.
    assert (with_ball.cx > players_only.cx + 1.0).all()
    ball_px = pitch_to_panorama(MODEL, np.array([[90.0, 34.0, 0.11]]))[0]
    assert (np.abs(with_ball.cx - ball_px[0]) <= with_ball.width / 2 + 1e-3).all()

    again, from_manifest = await _plan_path(acts, objects)
    assert from_manifest
    np.testing.assert_array_equal(again.cx, with_ball.cx)


async def test_a_view_plans_another_mode_into_its_own_folder_and_refuses_bad_settings(
    objects: ObjectStore, analytics: AnalyticsStore, panorama_chunks: list[Path]
) -> None:
    _write_track_points(analytics)
    _write_ball(analytics, 60.0)
    acts = VcamActivities(objects, analytics)
    own = await ActivityEnvironment().run(acts.plan, await _plan_input(objects))
    request = await _plan_input(objects)
    request.view = "zones-1"
    request.camera = CameraSettings(mode="zones", params={"hold_s": 0.5})
    view = await ActivityEnvironment().run(acts.plan, request)
    assert view.path_key == "orgs/o1/matches/m1/1/vcam/views/zones-1/path.parquet"
    assert await objects.exists("orgs/o1/matches/m1/1/vcam/views/zones-1/plan/manifest.json")
    # The match's own path is untouched, and the two modes frame differently.
    assert (await ActivityEnvironment().run(acts.plan, await _plan_input(objects))).from_manifest
    own_path = VcamPath.from_table(pq.read_table(io.BytesIO(await objects.get(own.path_key))))
    view_path = VcamPath.from_table(pq.read_table(io.BytesIO(await objects.get(view.path_key))))
    assert not np.allclose(own_path.width, view_path.width)

    render_input = await _render_input(objects, CHUNKS[0], panorama_chunks[0], view.path_key)
    render_input.view = "zones-1"
    rendered = await ActivityEnvironment().run(acts.render_chunk, render_input)
    assert rendered.video_key == "orgs/o1/matches/m1/1/vcam/views/zones-1/180p/chunk-00000.mp4"

    for camera, view_name in (
        (CameraSettings(mode="orbit"), "v"),
        (CameraSettings(mode="director", params={"zoom": 2.0}), "v"),
        (CameraSettings(mode="director", params={"area_m2": float("nan")}), "v"),
        (CameraSettings(), "../escape"),
    ):
        bad = await _plan_input(objects)
        bad.camera, bad.view = camera, view_name
        with pytest.raises(ApplicationError) as raised:
            await ActivityEnvironment().run(acts.plan, bad)
        assert raised.value.non_retryable
