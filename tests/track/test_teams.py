"""Team assignment from kit colour: the clustering, and a synthetic match end to end."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from activities.detect.activity import DetectActivities
from activities.detect.contracts import DetectChunkInput
from activities.stitch.activity import StitchActivities
from activities.stitch.contracts import StitchChunkInput, StitchPrepareInput
from activities.track.activity import TrackActivities
from activities.track.contracts import TrackChunk, TrackInput
from activities.track.teams import ColourAccumulator, assign_teams, team_column
from evaluation.formats import Truth, load_truth
from polyvision.storage.analytics import apply_migrations, open_analytics_store
from polyvision.storage.objects import open_object_store
from synth.generate import SynthConfig, generate_match
from tests.fixtures.pipeline import HAS_MODEL, MISSING_MODEL, MODELS_DIR

RED = (45.0, 65.0, 45.0)
BLUE = (35.0, 20.0, -60.0)


def _two_kits(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tracks 1..10 red, 11..20 blue (tight clusters), 21 yellow (a goalkeeper), 22 black."""
    rng = np.random.default_rng(seed)
    lab = np.concatenate(
        [
            np.array(RED) + rng.normal(0, 2.0, (10, 3)),
            np.array(BLUE) + rng.normal(0, 2.0, (10, 3)),
            [[85.0, -5.0, 80.0], [8.0, 0.0, 0.0]],
        ]
    )
    ids = np.arange(1, 23)
    counts = np.full(22, 50)
    return ids, lab, counts


def test_two_tight_clusters_become_teams_and_outliers_stay_unknown() -> None:
    ids, lab, counts = _two_kits()
    teams = assign_teams(ids, lab, counts)
    # Team 0 is the kit with the smaller b* (blue), team 1 the other (red).
    assert {t: teams[t] for t in range(1, 11)} == dict.fromkeys(range(1, 11), 1)
    assert {t: teams[t] for t in range(11, 21)} == dict.fromkeys(range(11, 21), 0)
    assert teams[21] == -1 and teams[22] == -1


def test_labels_do_not_depend_on_track_order_or_ids() -> None:
    ids, lab, counts = _two_kits(seed=3)
    order = np.random.default_rng(1).permutation(len(ids))
    shuffled = assign_teams(ids[order] + 100, lab[order], counts[order])
    straight = assign_teams(ids, lab, counts)
    assert {t - 100: team for t, team in shuffled.items()} == straight
    assert assign_teams(ids, lab, counts) == straight  # deterministic


def test_short_or_colourless_tracks_and_single_kits_get_no_team() -> None:
    ids, lab, counts = _two_kits()
    counts[0] = 3  # too few samples
    lab[1] = np.nan  # never coloured
    teams = assign_teams(ids, lab, counts)
    assert teams[1] == -1 and teams[2] == -1 and teams[3] == 1
    assert set(assign_teams([1], [RED], [50]).values()) == {-1}
    assert assign_teams([], np.zeros((0, 3)), []) == {}
    same = np.array(RED) + np.random.default_rng(0).normal(0, 1.0, (8, 3))
    assert set(assign_teams(np.arange(8), same, np.full(8, 20)).values()) <= {0, 1, -1}


def test_accumulator_state_round_trips_and_medians_each_chunk() -> None:
    acc = ColourAccumulator()
    acc.add_chunk([1, 1, 1, 2], [RED, RED, (0.0, 0.0, 0.0), BLUE])  # one bad red sample
    acc.add_chunk([1, 2, 2], [RED, BLUE, (np.nan, 0.0, 0.0)])  # NaN samples are ignored
    ids, lab, counts = acc.colours()
    assert ids.tolist() == [1, 2] and counts.tolist() == [4, 2]
    np.testing.assert_allclose(lab, [RED, BLUE])
    again = ColourAccumulator.from_state(acc.to_state())
    assert again.to_state() == acc.to_state()
    np.testing.assert_array_equal(team_column([2, 5, 1], {1: 1, 2: 0}), [0, -1, 1])


# --- end to end: stitch, detect and track a synthetic match --------------------------------


@dataclass
class Pipeline:
    truth: Truth
    points: dict[str, np.ndarray]
    colours: dict[str, np.ndarray]
    track_colours: ColourAccumulator


CHUNK_FRAMES = 25


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pipeline(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pipeline]:
    if not HAS_MODEL:
        pytest.skip(MISSING_MODEL)
    root = tmp_path_factory.mktemp("teams")
    match_dir = root / "match"
    generate_match(SynthConfig(seconds=2.0, width=960, height=540, seed=5), match_dir)
    truth = load_truth(match_dir)
    objects = open_object_store(
        f"file://{root / 'objects'}", secret=b"s" * 32, public_base_url="http://t"
    )
    with open_analytics_store(f"chdb://{root / 'analytics'}") as analytics:
        apply_migrations(analytics)
        async with objects:
            env = ActivityEnvironment()
            sha = {}
            for name in ("rig.json", "left.mp4", "right.mp4"):
                data = (match_dir / name).read_bytes()
                sha[name] = hashlib.sha256(data).hexdigest()
                await objects.put(f"in/{name}", data)
            stitch = StitchActivities(objects, root / "cache")
            prepared = await env.run(
                # 1.3: players as tall in pixels as in the 1.9x-wide panorama these kits were
                # tuned on (the panorama is now 1.48x the source width).
                stitch.prepare,
                StitchPrepareInput("o1", "m1", 1, "in/rig.json", scale=1.3),
            )
            detect = DetectActivities(objects, analytics, MODELS_DIR)
            chunks = []
            strides: set[int] = set()
            for index, start in enumerate(range(0, truth.frames, CHUNK_FRAMES)):
                end = min(start + CHUNK_FRAMES, truth.frames)
                stitched = await env.run(
                    stitch.stitch_chunk,
                    StitchChunkInput(
                        "o1",
                        "m1",
                        1,
                        index,
                        "in/left.mp4",
                        "in/right.mp4",
                        sha["left.mp4"],
                        sha["right.mp4"],
                        "in/rig.json",
                        prepared.panorama_model_key,
                        start,
                        end,
                        truth.fps,
                    ),
                )
                detected = await env.run(
                    detect.detect_chunk,
                    DetectChunkInput(
                        "o1",
                        "m1",
                        1,
                        index,
                        stitched.video_key,
                        stitched.sha256,
                        start,
                        roi=prepared.pitch_polygon,
                    ),
                )
                chunks.append(TrackChunk(index, start, end - start))
                strides.add(detected.stride)
            track = TrackActivities(objects, analytics)
            heartbeats: list[dict[str, object]] = []
            env.on_heartbeat = lambda *details: heartbeats.append(details[0])
            await env.run(
                track.track_match,
                TrackInput(
                    "o1",
                    "m1",
                    1,
                    chunks,
                    prepared.panorama_model_key,
                    truth.fps,
                    detect_stride=strides.pop(),
                ),
            )
            points = analytics.query_numpy(
                "SELECT frame, track_id, team, pitch_x, pitch_y FROM track_points "
                "WHERE match_id = 'm1' ORDER BY frame, track_id"
            )
            colours = analytics.query_numpy(
                "SELECT class_id, torso_l, torso_a, torso_b FROM detections WHERE match_id = 'm1'"
            )
            state = ColourAccumulator.from_state(heartbeats[-1]["colours"])  # type: ignore[arg-type]
            yield Pipeline(truth, points, colours, state)


def track_truth_teams(pipeline: Pipeline, max_distance_m: float = 3.0) -> dict[int, str]:
    """Each track's majority truth team, matching points to the nearest truth person per frame."""
    truth, points = pipeline.truth, pipeline.points
    people = truth.is_person
    votes: dict[int, dict[str, int]] = {}
    for frame in np.unique(points["frame"]):
        rows = np.flatnonzero(points["frame"] == frame)
        truth_rows = np.flatnonzero(people & (truth.frame == frame))
        xy = np.column_stack([points["pitch_x"][rows], points["pitch_y"][rows]])
        distance = np.linalg.norm(
            xy[:, None, :] - truth.position[truth_rows, None, :2].transpose(1, 0, 2), axis=2
        )
        nearest = np.argmin(distance, axis=1)
        for row, near, d in zip(
            rows, nearest, distance[np.arange(len(rows)), nearest], strict=True
        ):
            if d <= max_distance_m:
                team = str(truth.team[truth_rows[near]])
                if truth.role[truth_rows[near]] == "goalkeeper":
                    team = "goalkeeper"
                count = votes.setdefault(int(points["track_id"][row]), {})
                count[team] = count.get(team, 0) + 1
    return {track: max(count, key=lambda k: count[k]) for track, count in votes.items()}


@pytest.mark.asyncio(loop_scope="module")
async def test_tracks_of_a_synthetic_match_split_into_the_two_kits(pipeline: Pipeline) -> None:
    colours = pipeline.colours
    ball = colours["class_id"] == 32
    assert np.isnan(colours["torso_l"][ball]).all()
    people = ~ball
    assert np.isfinite(colours["torso_l"][people]).mean() > 0.95

    points = pipeline.points
    track_team = dict(zip(points["track_id"].tolist(), points["team"].tolist(), strict=True))
    truth_team = track_truth_teams(pipeline)
    accuracy = {}
    label = {}
    for kit in ("home", "away"):
        members = [track_team[t] for t, team in truth_team.items() if team == kit]
        values, counts = np.unique(members, return_counts=True)
        label[kit] = int(values[np.argmax(counts)])
        accuracy[kit] = counts.max() / len(members)
    # Team 0 is the kit with the smaller b*: blue (away); red (home) is team 1.
    assert label == {"home": 1, "away": 0}
    # Measured on this match (seed 5): home 0.78, away 1.0 with upscaled tiles (0.9 and 0.6
    # with native ones). Far away players are a few pixels wide and their kit is smeared with
    # the grass by the video's chroma subsampling; the thresholds guard against regressions,
    # the figure (team and role accuracy >= 0.9) is measured on 60 s matches.
    assert accuracy["home"] >= 0.7 and accuracy["away"] >= 0.7, accuracy
    ids, _, counts = pipeline.track_colours.colours()
    # Samples are kept per online fragment; a final identity is its earliest fragment's id.
    assert set(track_team) <= set(ids.tolist()) and (counts > 0).all()
    teams = points["team"][points["team"] >= 0]
    assert (np.bincount(teams, minlength=2) > 0).all()
