"""Loaders and writers of the truth and results files."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evaluation import (
    BallResults,
    FormatError,
    Results,
    load_results,
    load_truth,
    write_results,
    write_truth,
)
from evaluation.formats import BALL_SCHEMA, TRACKS_SCHEMA
from tests.eval.helpers import make_detections, make_tracks, make_truth, make_vcam


def sample_truth():
    rows = [
        (0, 0, "ball", (52.5, 34.0, 0.5), (10.0, 20.0, 14.0, 24.0)),
        (0, 7, "home", (10.0, 10.0, 0.0), None),
        (1, 7, "home", (10.5, 10.0, 0.0), (100.0, 100.0, 150.0, 250.0)),
    ]
    return make_truth(rows, frames=2, in_play=[True, True, False])


def test_truth_round_trip(tmp_path):
    truth = sample_truth()
    write_truth(truth, tmp_path)
    back = load_truth(tmp_path)
    assert (back.fps, back.frames, back.size, back.seed) == (25.0, 2, (1920, 1080), 7)
    assert back.cameras == ["left", "right"]
    for name in ("frame", "id", "team", "role", "position", "in_play"):
        np.testing.assert_array_equal(getattr(back, name), getattr(truth, name))
        assert getattr(back, name).dtype == getattr(truth, name).dtype
    for camera in truth.cameras:
        np.testing.assert_array_equal(back.boxes[camera], truth.boxes[camera])
        np.testing.assert_array_equal(back.visible[camera], truth.visible[camera])


def test_truth_tolerates_extra_columns_and_keys_and_missing_in_play(tmp_path):
    write_truth(sample_truth(), tmp_path)
    table = pq.read_table(tmp_path / "truth.parquet").drop_columns(["in_play", "right_visible"])
    table = table.append_column("speed_mps", pa.array([0.0, 1.0, 2.0], pa.float32()))
    pq.write_table(table, tmp_path / "truth.parquet")
    meta = json.loads((tmp_path / "match.json").read_text())
    (tmp_path / "match.json").write_text(json.dumps({**meta, "weather": "rain"}))
    back = load_truth(tmp_path)
    # A camera without its visible column is not a camera; no in_play column means in play.
    assert back.cameras == ["left"]
    assert back.in_play is not None and back.in_play.all()
    assert back.meta["weather"] == "rain"


def test_truth_missing_column_is_refused(tmp_path):
    write_truth(sample_truth(), tmp_path)
    table = pq.read_table(tmp_path / "truth.parquet").drop_columns(["z_m"])
    pq.write_table(table, tmp_path / "truth.parquet")
    with pytest.raises(FormatError, match="z_m"):
        load_truth(tmp_path)


def test_results_round_trip(tmp_path):
    results = Results(
        detections=make_detections([(3, "left", 0, 0.75, (1.0, 2.0, 3.0, 4.0))]),
        tracks=make_tracks(
            [(3, 42, "away", 10.25, 20.5), (4, 42, "unknown", 11.0, 20.5)],
            roles=["goalkeeper", "unknown"],
        ),
        vcam=make_vcam([(3, 40.0, 20.0, 60.0, 50.0)]),
        ball=BallResults(
            frame=np.array([3, 4], np.int32),
            position=np.array([[52.5, 34.0, 0.11], [np.nan, np.nan, np.nan]], np.float32),
            visible=np.array([True, False]),
            in_play=np.array([True, False]),
        ),
    )
    write_results(results, tmp_path)
    back = load_results(tmp_path)
    assert back.detections is not None and back.tracks is not None and back.vcam is not None
    assert back.ball is not None
    assert pq.read_schema(tmp_path / "ball.parquet").equals(BALL_SCHEMA)
    for part in ("detections", "tracks", "vcam", "ball"):
        ours, theirs = getattr(results, part), getattr(back, part)
        for name in vars(ours):
            np.testing.assert_array_equal(getattr(theirs, name), getattr(ours, name))


def test_null_track_team_reads_as_unknown(tmp_path):
    table = pa.Table.from_pylist(
        [{"frame": 0, "track_id": 1, "team": None, "x_m": 1.0, "y_m": 2.0}], schema=TRACKS_SCHEMA
    )
    pq.write_table(table, tmp_path / "tracks.parquet")
    back = load_results(tmp_path)
    assert back.tracks is not None
    assert back.tracks.team.tolist() == ["unknown"]


def test_tracks_without_role_column_read_as_unknown(tmp_path):
    # Results exported before tracks had roles: the column is missing, not null.
    table = pa.Table.from_pylist(
        [{"frame": 0, "track_id": 1, "team": "home", "role": None, "x_m": 1.0, "y_m": 2.0}],
        schema=TRACKS_SCHEMA,
    )
    pq.write_table(table.drop_columns(["role"]), tmp_path / "tracks.parquet")
    back = load_results(tmp_path)
    assert back.tracks is not None and back.tracks.role is not None
    assert back.tracks.role.tolist() == ["unknown"]
    assert back.tracks.team.tolist() == ["home"]
    # Written again, the file has the column.
    write_results(back, tmp_path / "again")
    assert "role" in pq.read_schema(tmp_path / "again" / "tracks.parquet").names


def test_null_track_role_reads_as_unknown(tmp_path):
    table = pa.Table.from_pylist(
        [{"frame": 0, "track_id": 1, "team": "home", "role": None, "x_m": 1.0, "y_m": 2.0}],
        schema=TRACKS_SCHEMA,
    )
    pq.write_table(table, tmp_path / "tracks.parquet")
    back = load_results(tmp_path)
    assert back.tracks is not None and back.tracks.role is not None
    assert back.tracks.role.tolist() == ["unknown"]


def test_tracks_role_must_match_length():
    with pytest.raises(FormatError, match="role"):
        make_tracks([(0, 1, "home", 1.0, 2.0)], roles=["outfield", "outfield"])


def test_missing_result_files_are_none(tmp_path):
    back = load_results(tmp_path)
    assert (back.detections, back.tracks, back.vcam, back.ball) == (None, None, None, None)


def test_results_missing_column_is_refused(tmp_path):
    pq.write_table(pa.table({"frame": pa.array([0], pa.int32())}), tmp_path / "vcam.parquet")
    with pytest.raises(FormatError, match="x0_m"):
        load_results(tmp_path)
