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
    assert len(report.notes) == 3
    data = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert (data["detection"], data["tracking"], data["vcam"]) == (None, None, None)
    table = report.format_table()
    assert "no detections.parquet" in table and "no vcam.parquet" in table


def test_full_report(tmp_path):
    write_truth(two_players(), tmp_path / "truth")
    results = Results(
        # Nobody is visible in the two-player truth: one person box is one FP, recall undefined.
        detections=make_detections([(0, "left", PERSON_CLASS, 0.5, (0.0, 0.0, 5.0, 5.0))]),
        tracks=make_tracks(perfect_tracks()),
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
    assert data["distance_covered"]["mean_abs_error_m"] == 0.0
    assert data["vcam"]["ball_in_view_share"] == 0.5
    assert data["notes"] == []
    assert data == report.to_dict()

    table = report.format_table()
    assert "Detection (IoU >= 0.50)" in table
    assert "Tracking (pitch, match <= 1.00 m)" in table
    assert "ball in view (share)" in table
    lines = table.splitlines()
    header = next(line for line in lines if "MOTA" in line)
    values = lines[lines.index(header) + 1]
    # Numbers are right-aligned under their headers, so both lines end in the same column.
    assert values.split() == ["1.0000"] * 5 + ["0", "20", "0", "0"]
    assert len(values) == len(header)
