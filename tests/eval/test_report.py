"""`run_eval` end to end: files in, report and JSON out."""

from __future__ import annotations

import json

from evaluation import PERSON_CLASS, Results, run_eval, write_results, write_truth
from tests.eval.helpers import make_detections, make_tracks, make_vcam, perfect_tracks, two_players


def test_missing_results_skip_every_section(tmp_path):
    write_truth(two_players(), tmp_path / "truth")
    (tmp_path / "results").mkdir()
    report = run_eval(tmp_path / "truth", tmp_path / "results", tmp_path / "out" / "eval.json")
    assert (report.detection, report.tracking, report.distance, report.vcam) == (None,) * 4
    assert len(report.notes) == 4
    data = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert (data["detection"], data["tracking"], data["vcam"]) == (None, None, None)
    table = report.format_table()
    assert "no detections.parquet" in table and "no vcam.parquet" in table
    assert "no ball.parquet" in table and data["ball"] is None


def test_full_report(tmp_path):
    write_truth(two_players(), tmp_path / "truth")
    results = Results(
        # Nobody is visible in the two-player truth: one person box is one FP, recall undefined.
        detections=make_detections([(0, "left", PERSON_CLASS, 0.5, (0.0, 0.0, 5.0, 5.0))]),
        tracks=make_tracks(perfect_tracks(), roles=["outfield"] * 20),
        vcam=make_vcam([(f, 40.0, 20.0, 60.0, 50.0) for f in range(5)]),
    )
    write_results(results, tmp_path / "results")
    out = tmp_path / "eval.json"
    report = run_eval(tmp_path / "truth", tmp_path / "results", out)
    data = json.loads(out.read_text())
    assert data["detection"]["left"]["person"] == {
        "class_id": 0,
        "tp": 0,
        "fp": 1,
        "fn": 0,
        "precision": 0.0,
        "recall": None,
    }
    assert data["tracking"]["mota"] == 1.0
    assert data["tracking"]["idf1"] == 1.0
    assert data["tracking"]["mean_position_error_m"] == 0.0
    assert data["tracking"]["team_accuracy"] == 1.0
    assert data["tracking"]["position_bias_m"] == 0.0
    assert data["tracking"]["ids_per_person"] == 1.0
    assert data["tracking"]["team_role_accuracy"] == 1.0
    assert data["tracking"]["position_error"] == {
        "pairs": 20,
        "mean_m": 0.0,
        "mean_x_m": 0.0,
        "mean_y_m": 0.0,
        "median_x_m": 0.0,
        "median_y_m": 0.0,
        "bias_m": 0.0,
    }
    assert data["tracking"]["identities"] == {
        "truth_people": 2,
        "track_ids": 2,
        "matched_track_ids": 2,
        "ids_per_person": 1.0,
        "matched_ids_per_person": 1.0,
    }
    team_role = data["tracking"]["team_role"]
    assert (team_role["pairs"], team_role["accuracy"]) == (20, 1.0)
    assert team_role["groups"]["home-player"] == {"pairs": 10, "accuracy": 1.0}
    assert team_role["groups"]["referee"] == {"pairs": 0, "accuracy": None}
    assert team_role["confusion"]["away-player"]["away-player"] == 10
    assert data["distance_covered"]["mean_abs_error_m"] == 0.0
    assert data["vcam"]["ball_in_view_share"] == 0.5
    assert data["notes"] == ["no ball.parquet: ball scores skipped"]
    assert data == report.to_dict()

    table = report.format_table()
    assert "Detection (IoU >= 0.50)" in table
    assert "Tracking (pitch, match <= 1.00 m)" in table
    assert "ball in view (share)" in table
    assert "mean position bias (m)" in table and "team and role accuracy" in table
    lines = table.splitlines()
    header = next(line for line in lines if "MOTA" in line)
    values = lines[lines.index(header) + 1]
    # Numbers are right-aligned under their headers, so both lines end in the same column.
    assert values.split() == ["1.0000"] * 5 + ["0", "20", "0", "0"]
    assert len(values) == len(header)
    # The confusion table lists the truth groups that have pairs, with their accuracy.
    title = lines.index("Team and role (matched pairs; rows truth, columns track)")
    assert lines[title + 1].split() == [
        "truth",
        "\\",
        "track",
        "home-player",
        "home-goalkeeper",
        "away-player",
        "away-goalkeeper",
        "referee",
        "unknown",
        "accuracy",
    ]
    assert lines[title + 2].split() == ["home-player", "10", "0", "0", "0", "0", "0", "1.0000"]
    assert lines[title + 3].split() == ["away-player", "0", "0", "10", "0", "0", "0", "1.0000"]
    # The last section (the other groups have no pairs), then the note on the missing ball.
    assert lines[title + 4 :] == ["", "note: no ball.parquet: ball scores skipped"]


def test_tracks_report_without_tracks_has_no_confusion_table(tmp_path):
    write_truth(two_players(), tmp_path / "truth")
    far = [(f, k, t, x + 5.0, y) for f, k, t, x, y in perfect_tracks()]
    write_results(Results(tracks=make_tracks(far)), tmp_path / "results")
    report = run_eval(tmp_path / "truth", tmp_path / "results")
    data = report.to_dict()["tracking"]
    assert data["position_error"] is None and data["position_bias_m"] is None
    assert data["team_role_accuracy"] is None
    assert data["identities"]["ids_per_person"] == 1.0
    assert data["identities"]["matched_track_ids"] == 0
    assert "Team and role" not in report.format_table()
