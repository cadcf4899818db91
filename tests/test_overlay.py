"""`polyvision overlay`: the drawing on synthetic frames, the command on hand-made stores (fast),
and the command on the session's processed synthetic match (the real stages' outputs)."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest

from activities.ingest.contracts import ChunkPlan, IngestOutput, RecordingSummary
from activities.stitch.panorama import PanoramaModel, panorama_to_pitch
from activities.track.ball_points import ball_points_table
from activities.track.ball_track import BallTrack
from polyvision.artifacts import Manifest, artifact_key
from polyvision.media.writer import VideoWriter
from polyvision.roles import (
    ROLE_GOALKEEPER,
    ROLE_PLAYER,
    ROLE_REFEREE,
    ROLE_UNKNOWN,
    TEAM_AWAY,
    TEAM_HOME,
    TEAM_UNKNOWN,
)
from polyvision.settings import Settings
from polyvision.stage import MANIFEST_NAME, output_to_json
from polyvision.storage.analytics import apply_migrations, open_analytics_store
from polyvision.storage.objects import open_object_store
from programs.cli import main
from programs.overlay import render
from programs.overlay.draw import (
    BALL_COLOUR,
    BALL_OUT_COLOUR,
    GOALKEEPER_OUTLINE,
    REFEREE_COLOUR,
    TEAM_COLOURS,
    TrackTable,
    ball_image_points,
    draw_overlay,
    image_points,
    trails,
)
from programs.overlay.render import OverlayError, check_analytics_free, clip_frames, output_size
from programs.stack_state import StackState
from programs.worker.stores import StoreHolder
from tests.fixtures.processed_match import ORGANIZATION, ProcessedMatch

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
FPS = 25.0
CHUNKS = [(0, 25), (25, 15)]
"""(first frame, frames) of the hand-made match's two chunks: 40 frames."""
ORG, MATCH = "o1", "m1"
GRASS = (60, 130, 50)

# Where four people stand on the panorama of `MODEL` (pixels), and who they are.
PIXELS = np.array([[200.0, 120.0], [560.0, 100.0], [330.0, 60.0], [450.0, 150.0]])
TEAMS = [TEAM_HOME, TEAM_AWAY, TEAM_UNKNOWN, TEAM_UNKNOWN]
ROLES = [ROLE_PLAYER, ROLE_GOALKEEPER, ROLE_REFEREE, ROLE_UNKNOWN]


def frame_points(pitch: np.ndarray, frame: int = 0) -> TrackTable:
    n = len(pitch)
    return TrackTable.from_columns(
        {
            "frame": np.full(n, frame),
            "track_id": np.arange(1, n + 1) * 10,
            "team": TEAMS[:n],
            "role": ROLES[:n],
            "pitch_x": pitch[:, 0],
            "pitch_y": pitch[:, 1],
        }
    )


def grass(shape: tuple[int, int] = (MODEL.height, MODEL.width)) -> np.ndarray:
    return np.broadcast_to(np.array(GRASS, np.uint8), (*shape, 3)).copy()


def colour_at(image: np.ndarray, xy: npt.ArrayLike) -> tuple[int, ...]:
    x, y = (round(float(v)) for v in np.asarray(xy, dtype=float))
    return tuple(int(c) for c in image[y, x])


def near(colour: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return max(abs(a - b) for a, b in zip(colour, expected, strict=True)) <= tolerance


def edge(image: np.ndarray, xy: np.ndarray, step: list[int]) -> tuple[int, ...]:
    """The first colour other than the one at ``xy``, walking from it by ``step``."""
    inside, point = colour_at(image, xy), np.asarray(xy, dtype=float)
    while colour_at(image, point) == inside:
        point = point + step
    return colour_at(image, point)


# -- the drawing ---------------------------------------------------------------------------------


def test_each_marker_sits_on_its_ground_point_coloured_by_team_and_shaped_by_role() -> None:
    pitch = panorama_to_pitch(MODEL, PIXELS)
    image = grass()
    before = image.copy()
    out = draw_overlay(image, frame_points(pitch), {}, MODEL, frame=7)
    np.testing.assert_array_equal(image, before)  # the input is left alone
    np.testing.assert_allclose(image_points(MODEL, pitch, image.shape), PIXELS, atol=1e-6)
    home, keeper, referee, unknown = PIXELS
    assert colour_at(out, home) == TEAM_COLOURS[TEAM_HOME]
    assert colour_at(out, keeper) == TEAM_COLOURS[TEAM_AWAY]
    assert colour_at(out, referee) == REFEREE_COLOUR
    assert colour_at(out, unknown) == TEAM_COLOURS[TEAM_UNKNOWN]
    # The goalkeeper's square has a white outline; a player's disc has none.
    sides = ([0, -1], [0, 1], [-1, 0], [1, 0])
    assert {edge(out, keeper, step) for step in sides} == {GOALKEEPER_OUTLINE}
    assert GOALKEEPER_OUTLINE not in {edge(out, home, step) for step in sides[:3]}
    # The id is written under each marker (white text), not over it.
    for xy in PIXELS:
        below = out[int(xy[1]) + 6 : int(xy[1]) + 20, int(xy[0]) - 10 : int(xy[0]) + 10]
        assert (below == 255).all(axis=-1).any()
    # The legend darkens the top-left corner.
    assert out[2, 2].sum() < before[2, 2].sum()


def test_markers_follow_a_resized_frame() -> None:
    pitch = panorama_to_pitch(MODEL, PIXELS[:1])
    out = draw_overlay(grass((96, 320)), frame_points(pitch), {}, MODEL)
    assert colour_at(out, PIXELS[0] / 2) == TEAM_COLOURS[TEAM_HOME]


def test_a_trail_runs_from_the_older_positions_to_the_marker() -> None:
    path = np.array([[300.0, 150.0], [340.0, 150.0], [380.0, 150.0]])
    pitch = panorama_to_pitch(MODEL, path)
    out = draw_overlay(grass(), frame_points(pitch[-1:]), {10: pitch}, MODEL)
    # Between the older positions: the team's colour (anti-aliased on a thin line).
    assert near(colour_at(out, [320.0, 150.0]), TEAM_COLOURS[TEAM_HOME])
    assert colour_at(out, [300.0, 140.0]) == GRASS  # nothing beside it
    no_trail = draw_overlay(grass(), frame_points(pitch[-1:]), {}, MODEL)
    assert colour_at(no_trail, [320.0, 150.0]) == GRASS


def test_points_off_the_panorama_are_left_out() -> None:
    pitch = np.array([[52.5, -14.0], [float("nan"), 3.0], [-400.0, 30.0]])
    out = draw_overlay(grass(), frame_points(pitch), {}, MODEL)
    assert out.shape == (MODEL.height, MODEL.width, 3)


def test_trails_hold_the_last_positions_of_the_tracks_present() -> None:
    frames = np.concatenate([np.arange(0, 41), np.arange(30, 36), np.arange(0, 21)])
    ids = np.concatenate([np.full(41, 1), np.full(6, 2), np.full(21, 3)])
    table = TrackTable.from_columns(
        {
            "frame": frames,
            "track_id": ids,
            "team": np.zeros(len(ids)),
            "role": np.zeros(len(ids)),
            "pitch_x": frames.astype(float),
            "pitch_y": ids.astype(float),
        }
    )
    assert np.all(np.diff(table.frame) >= 0)  # sorted by frame on the way in
    found = trails(table, 35, 25)
    assert set(found) == {1, 2}  # track 3 ended at frame 20
    np.testing.assert_array_equal(found[1][:, 0], np.arange(11, 36))
    np.testing.assert_array_equal(found[2][:, 0], np.arange(30, 36))
    assert list(table.at(35).track_id) == [1, 2]


def test_the_clip_stays_inside_the_match() -> None:
    assert clip_frames(10, 250, None, 40) == render.Clip(10, 39, 24)
    assert clip_frames(0, 5, 4, 40) == render.Clip(0, 4, 4)
    with pytest.raises(OverlayError, match="past the match's end"):
        clip_frames(40, 5, None, 40)
    with pytest.raises(OverlayError, match="not among the frames drawn"):
        clip_frames(0, 5, 5, 40)


def test_the_output_keeps_the_panorama_aspect_and_never_grows() -> None:
    assert output_size(MODEL, 1920) == (640, 192)
    assert output_size(MODEL, 320) == (320, 96)
    wide = PanoramaModel(**{**MODEL.to_dict(), "width": 5700, "height": 1668, "center": (0, 0, 9)})
    assert output_size(wide, 1920) == (1920, 562)


@pytest.mark.parametrize("command", ["polyvision up", "python3"])
def test_a_store_held_by_a_running_stack_says_to_stop_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str
) -> None:
    # Recognised by its command line, or as the stack whose stack.json names that pid.
    monkeypatch.setattr(render, "embedded_analytics_holder", lambda url: StoreHolder(4242, command))
    settings = Settings(data_dir=tmp_path)
    stack = StackState(4242, None, "", "", "", "", "", str(tmp_path), None, None, None)
    with pytest.raises(OverlayError) as caught:
        check_analytics_free(settings, stack)
    message = str(caught.value)
    assert "held by polyvision up, pid 4242" in message
    assert "stop the stack" in message and "--stack DIR" in message


# -- the command on hand-made stores -------------------------------------------------------------


def _people(frame: int) -> np.ndarray:
    """`PIXELS`' people on the pitch, the home player walking 0.2 m a frame towards +x."""
    pitch = panorama_to_pitch(MODEL, PIXELS)
    pitch[0, 0] += 0.2 * frame
    return pitch


def _ingest_manifest(frame_count: int) -> bytes:
    recording = RecordingSummary(
        "k", "h264", 320, 180, "25/1", frame_count, frame_count / FPS, 2, False, "yuv420p", 8, 1, ""
    )
    chunks = [
        ChunkPlan(i, first, first + n, first / FPS, (first + n) / FPS, first, first)
        for i, (first, n) in enumerate(CHUNKS)
    ]
    output = IngestOutput(recording, recording, frame_count, FPS, "25/1", 320, 180, chunks)
    return Manifest("ingest", "d", "test", {"output": output_to_json(output)}).to_json()


async def _fill_objects(root: Path, organization_id: str, videos: bool) -> None:
    async with open_object_store(
        f"file://{root / 'objects'}", secret=b"s" * 32, public_base_url="http://t"
    ) as objects:
        frame_count = sum(n for _, n in CHUNKS)
        key = artifact_key(organization_id, MATCH, 1, "ingest", MANIFEST_NAME)
        await objects.put(key, _ingest_manifest(frame_count))
        key = artifact_key(organization_id, MATCH, 1, "stitch", "panorama.json")
        await objects.put(key, MODEL.to_json().encode())
        for index, (_, n) in enumerate(CHUNKS if videos else []):
            path = root / f"chunk-{index}.mp4"
            with VideoWriter(path, MODEL.width, MODEL.height, FPS) as writer:
                for _ in range(n):
                    writer.write(grass())
            key = artifact_key(organization_id, MATCH, 1, "stitch", f"chunk-{index:05d}.mp4")
            await objects.upload_file(key, path)


def _fill_analytics(root: Path, organization_id: str, points_from: int | None) -> None:
    with open_analytics_store(f"chdb://{root / 'analytics'}") as analytics:
        apply_migrations(analytics)
        if points_from is None:
            return
        frames = np.repeat(np.arange(points_from, sum(n for _, n in CHUNKS)), len(PIXELS))
        pitch = np.concatenate([_people(int(f)) for f in frames[:: len(PIXELS)]])
        count = len(frames)
        analytics.insert(
            "track_points",
            {
                "organization_id": np.full(count, organization_id, dtype=object),
                "match_id": np.full(count, MATCH, dtype=object),
                "revision": np.ones(count, np.uint32),
                "chunk": (frames >= CHUNKS[1][0]).astype(np.uint32),
                "frame": frames.astype(np.uint32),
                "track_id": np.tile(np.arange(1, len(PIXELS) + 1), count // len(PIXELS)).astype(
                    np.uint32
                ),
                "team": np.tile(TEAMS, count // len(PIXELS)).astype(np.int8),
                "role": np.tile(ROLES, count // len(PIXELS)).astype(np.int8),
                "pitch_x": pitch[:, 0].astype(np.float32),
                "pitch_y": pitch[:, 1].astype(np.float32),
                "speed": np.zeros(count, np.float32),
            },
        )


def stack_dir(
    root: Path,
    *,
    organization_id: str = ORG,
    videos: bool = True,
    points_from: int | None = 0,
) -> Path:
    """A stopped `polyvision up` data directory holding the hand-made match (its track points
    from frame ``points_from`` on, none for None)."""
    root.mkdir(parents=True, exist_ok=True)
    asyncio.run(_fill_objects(root, organization_id, videos))
    _fill_analytics(root, organization_id, points_from)
    return root


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This environment's own stores are elsewhere: the command reads --stack's."""
    monkeypatch.setenv("PV_DATA_DIR", str(tmp_path / "env"))
    for name in ("PV_DATABASE_URL", "PV_ANALYTICS_URL", "PV_OBJECTS_URL"):
        monkeypatch.delenv(name, raising=False)


def overlay(*args: str) -> int:
    return main(["overlay", "--match", MATCH, "--org", ORG, *args])


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


@pytest.mark.usefixtures("env")
def test_the_command_draws_the_frames_asked_for_across_chunks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = stack_dir(tmp_path / "stack")
    out = tmp_path / "out"
    args = ["--stack", str(root), "--out", str(out), "--start-frame", "5", "--frames", "30"]
    assert overlay(*args, "--width", "320") == 0
    frames = decoded_frames(out / "overlay.mp4")
    assert len(frames) == 30  # frames 5-34: 20 from the first chunk, 10 from the second
    assert frames[0].shape == (96, 320, 3)
    png = cv2.imread(str(out / "overlay-frame-19.png"))  # the middle frame by default
    assert png is not None and png.shape == (96, 320, 3)
    home = image_points(MODEL, _people(19)[:1], png.shape)[0]
    assert colour_at(png, home) == TEAM_COLOURS[TEAM_HOME]
    printed = capsys.readouterr().out
    assert "frames 5-34 (30 drawn, 120 track points) at 320x96" in printed


@pytest.mark.usefixtures("env")
def test_an_organization_slug_is_looked_up_read_only(tmp_path: Path) -> None:
    from sqlmodel import Session, create_engine

    from polyvision.storage.metadata import upgrade
    from polyvision.storage.metadata.models import Organization

    organization_id = uuid.uuid4()
    root = stack_dir(tmp_path / "stack", organization_id=str(organization_id))
    upgrade(f"sqlite+aiosqlite:///{root / 'metadata.db'}")
    with Session(create_engine(f"sqlite:///{root / 'metadata.db'}")) as session:
        session.add(Organization(id=organization_id, name="Local", slug="local"))
        session.commit()
    out = tmp_path / "out"
    args = ["--match", MATCH, "--stack", str(root), "--out", str(out), "--png-frame", "3"]
    assert main(["overlay", *args]) == 0  # --org local: the slug of the stack's organization
    assert len(decoded_frames(out / "overlay.mp4")) == 40
    assert (out / "overlay-frame-3.png").is_file()


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    ("videos", "points_from", "args", "expected"),
    [
        (True, 0, ["--match", "nope"], "no match nope in organization o1 (revision 1)"),
        (True, 0, ["--revision", "2"], "no match m1 in organization o1 (revision 2)"),
        (True, None, [], "match m1 has no track points (revision 1)"),
        (
            True,
            30,
            ["--frames", "10"],
            "match m1 has no track points in frames 0-9 (its points are in frames 30-39)",
        ),
        (False, 0, [], "no panorama chunks for frames 0-39"),
        (
            True,
            0,
            ["--start-frame", "40"],
            "--start-frame 40 is past the match's end (frames 0-39)",
        ),
    ],
)
def test_what_cannot_be_drawn_is_said_in_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    videos: bool,
    points_from: int | None,
    args: list[str],
    expected: str,
) -> None:
    root = stack_dir(tmp_path / "stack", videos=videos, points_from=points_from)
    assert overlay("--stack", str(root), "--out", str(tmp_path / "out"), *args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"polyvision overlay: {expected}"), err
    assert err.count("\n") == 1


@pytest.mark.usefixtures("env")
def test_an_analytics_store_that_was_never_made_has_no_track_points(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "stack"
    root.mkdir()
    asyncio.run(_fill_objects(root, ORG, videos=True))
    assert overlay("--stack", str(root), "--out", str(tmp_path / "out")) == 2
    assert "has no track points" in capsys.readouterr().err
    assert not (root / "analytics").exists()  # not created by looking


HOLD = """
import sys, time
from polyvision.storage.analytics import open_analytics_store
store = open_analytics_store(sys.argv[1])
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture
def held_stack(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """The hand-made match's data directory, its analytics store held by another process."""
    root = stack_dir(tmp_path / "stack")
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, f"chdb://{root / 'analytics'}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        yield root, process.pid
    finally:
        process.kill()
        process.wait()


@pytest.mark.usefixtures("env")
def test_a_held_analytics_store_is_named_not_opened(
    held_stack: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, pid = held_stack
    assert overlay("--stack", str(root), "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert f"is held by {Path(sys.executable).name}, pid {pid}" in err
    assert "one process only" in err and err.count("\n") == 1


# -- the command on the session's processed match ------------------------------------------------


@pytest.mark.usefixtures("env")
def test_the_processed_match_is_drawn(processed_match: ProcessedMatch, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--match", processed_match.match_input.match_id, "--org", ORGANIZATION]
    args += ["--stack", str(processed_match.root), "--out", str(out), "--start-frame", "30"]
    assert main(["overlay", *args, "--frames", "40"]) == 0  # across the two 2 s chunks
    assert len(decoded_frames(out / "overlay.mp4")) == 40
    assert (out / "overlay-frame-49.png").is_file()


# -- the ball ------------------------------------------------------------------------------------


def ball_rows(
    pixels: np.ndarray,
    z: float = 0.0,
    *,
    observed: bool = True,
    in_play: bool = True,
    first_frame: int = 0,
) -> BallTrack:
    """The ball at the panorama's ground ``pixels`` (one a frame), lifted by ``z`` metres."""
    n = len(pixels)
    return BallTrack(
        frame=np.arange(first_frame, first_frame + n, dtype=np.int64),
        xy=panorama_to_pitch(MODEL, pixels),
        z=np.full(n, z),
        visible=np.ones(n, np.bool_),
        observed=np.full(n, observed),
        in_play=np.full(n, in_play),
        confidence=np.full(n, 0.9),
    )


def ring_point(centre: np.ndarray, degrees: float, radius: int = 8) -> np.ndarray:
    """A point of the ball's ring (radius 8 px on a 640-wide image), clockwise from the right."""
    angle = math.radians(degrees)
    return np.round(centre) + radius * np.array([math.cos(angle), math.sin(angle)])


def test_the_ball_is_a_ring_where_it_is_in_the_air_with_a_line_to_the_grass() -> None:
    ball = ball_rows(np.array([[320.0, 140.0]]), z=3.0)
    out = draw_overlay(grass(), frame_points(np.zeros((0, 2))), {}, MODEL, frame=0, ball=ball)
    centre = ball_image_points(MODEL, ball.xy, ball.z, out.shape)[0]
    assert centre[1] < 140.0 - 10  # lifted: seen above its ground point
    assert colour_at(out, centre) == BALL_COLOUR  # seen: a dot in the ring
    for degrees in (0, 90, 180, 270):
        assert near(colour_at(out, ring_point(centre, degrees)), BALL_COLOUR, 60)
    assert colour_at(out, [320.0, 140.0]) == BALL_COLOUR  # the grass point under it
    between = (np.round(centre) + np.array([320.0, 140.0])) / 2
    assert near(colour_at(out, between), BALL_COLOUR, 90)  # the line down to the grass
    # Without a ball, nothing there; a ball on the grass has no line.
    no_ball = draw_overlay(grass(), frame_points(np.zeros((0, 2))), {}, MODEL, frame=0)
    assert colour_at(no_ball, centre) == GRASS
    low = draw_overlay(
        grass(),
        frame_points(np.zeros((0, 2))),
        {},
        MODEL,
        frame=0,
        ball=ball_rows(np.array([[320.0, 140.0]]), z=0.11),
    )
    assert colour_at(low, between) == GRASS


def test_a_bridged_ball_is_dashed_and_hollow_and_one_out_of_play_grey() -> None:
    pixels = np.array([[320.0, 140.0]])
    bridged = draw_overlay(
        grass(),
        frame_points(np.zeros((0, 2))),
        {},
        MODEL,
        frame=0,
        ball=ball_rows(pixels, observed=False),
    )
    centre = ball_image_points(MODEL, panorama_to_pitch(MODEL, pixels), [0.0], bridged.shape)[0]
    assert colour_at(bridged, centre) == GRASS  # hollow
    for dash, gap in ((22.5, 67.5), (112.5, 157.5), (202.5, 247.5), (292.5, 337.5)):
        assert near(colour_at(bridged, ring_point(centre, dash)), BALL_COLOUR, 60)
        assert colour_at(bridged, ring_point(centre, gap)) == GRASS

    out_of_play = draw_overlay(
        grass(),
        frame_points(np.zeros((0, 2))),
        {},
        MODEL,
        frame=0,
        ball=ball_rows(pixels, in_play=False),
    )
    assert colour_at(out_of_play, centre) == BALL_OUT_COLOUR
    assert near(colour_at(out_of_play, ring_point(centre, 0)), BALL_OUT_COLOUR, 40)

    # A frame where the ball is not visible: no ring.
    hidden = ball_rows(pixels)
    hidden.visible[0] = False
    out = draw_overlay(grass(), frame_points(np.zeros((0, 2))), {}, MODEL, frame=0, ball=hidden)
    assert colour_at(out, centre) == GRASS


def test_the_ball_trail_fades_with_age() -> None:
    # Frames 0-10 along y = 150 from x = 200 to 400; drawn at frame 10.
    pixels = np.column_stack([np.linspace(200.0, 400.0, 11), np.full(11, 150.0)])
    out = draw_overlay(
        grass(), frame_points(np.zeros((0, 2))), {}, MODEL, frame=10, ball=ball_rows(pixels)
    )

    def strength(x: float) -> int:
        """How far the colour on the trail at ``x`` is from the grass."""
        return max(abs(a - b) for a, b in zip(colour_at(out, [x, 150.0]), GRASS, strict=True))

    oldest, middle, newest = strength(210.0), strength(290.0), strength(370.0)
    assert 0 < oldest < middle < newest
    assert colour_at(out, [210.0, 140.0]) == GRASS  # nothing beside it
    # A frame without the ball breaks the trail there.
    gap = ball_rows(pixels)
    gap.visible[5] = False
    broken = draw_overlay(grass(), frame_points(np.zeros((0, 2))), {}, MODEL, frame=10, ball=gap)
    assert colour_at(broken, [310.0, 150.0]) == GRASS  # the steps 4-5 and 5-6
    assert colour_at(broken, [350.0, 150.0]) != GRASS


def _fill_ball(root: Path) -> BallTrack:
    """The ball at the panorama's (100 + 10 f, 170) in every frame of the hand-made match."""
    frames = sum(n for _, n in CHUNKS)
    pixels = np.column_stack([100.0 + 10.0 * np.arange(frames), np.full(frames, 170.0)])
    ball = ball_rows(pixels, z=0.11)
    with open_analytics_store(f"chdb://{root / 'analytics'}") as analytics:
        for chunk, (first, n) in enumerate(CHUNKS):
            part = ball_points_table(ball.slice_frames(first, first + n))
            analytics.replace_slice("ball_points", ORG, MATCH, 1, chunk, part)
    return ball


@pytest.mark.usefixtures("env")
def test_the_command_draws_the_ball_from_ball_points(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = stack_dir(tmp_path / "stack")
    ball = _fill_ball(root)
    out = tmp_path / "out"
    args = ["--stack", str(root), "--out", str(out), "--start-frame", "20", "--frames", "10"]
    assert overlay(*args, "--png-frame", "27") == 0
    png = cv2.imread(str(out / "overlay-frame-27.png"))
    assert png is not None
    at = ball.slice_frames(27, 28)
    centre = ball_image_points(MODEL, at.xy, at.z, png.shape)[0]
    assert near(colour_at(png, centre), BALL_COLOUR, 40)
    # The trail of the second before: where the ball was 5 frames earlier, between two steps.
    before = ball.slice_frames(22, 23)
    trail = ball_image_points(MODEL, before.xy, before.z, png.shape)[0] + np.array([5.0, 0.0])
    assert colour_at(png, trail) != colour_at(png, trail + np.array([0.0, 8.0]))
    assert "ball: visible in 10 of the frames" in capsys.readouterr().out


@pytest.mark.usefixtures("env")
def test_a_match_without_ball_points_is_drawn_without_a_ball(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = stack_dir(tmp_path / "stack")
    out = tmp_path / "out"
    assert overlay("--stack", str(root), "--out", str(out), "--frames", "5") == 0
    assert "ball: visible in 0 of the frames" in capsys.readouterr().out
