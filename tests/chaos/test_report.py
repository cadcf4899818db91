"""The chaos suite's verdicts and RELIABILITY.md come from the figures a run produced: a
difference, a failed workflow or a skipped test turns a part red, and the report says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaos import checks, report
from chaos.results import read_results, write_result


def clean_run(**overrides: Any) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "kills": 20,
        "kills_during_an_activity": 19,
        "stages_hit": {"detect_chunk": 7, "stitch_chunk": 12},
        "workflows": 3,
        "workflows_completed": 3,
        "workflows_failed": [],
        "objects_compared": 200,
        "object_differences": {},
        "row_tables_compared": 12,
        "rows_compared": 9000,
        "row_differences": [],
        "rows_duplicated": [],
    }
    return {**figures, **overrides}


def test_a_clean_batch_meets_every_kill_check() -> None:
    assert all(check.ok for check in checks.kills(clean_run(), wanted=20))


def test_any_difference_failure_or_missing_kill_fails_its_check() -> None:
    broken = [
        clean_run(object_differences={"m1": ["hls/720p/seg-00001.m4s"]}),
        clean_run(row_differences=["track_points/m1: [10, 1] vs [20, 2]"]),
        clean_run(rows_duplicated=["track_points/m1: 20 rows, 10 expected"]),
        clean_run(workflows_completed=2, workflows_failed=["WorkflowFailureError()"]),
        clean_run(kills=19),
    ]
    for figures in broken:
        found = checks.kills(figures, wanted=20)
        assert not all(check.ok for check in found), figures


def test_a_skipped_or_failed_test_fails_the_security_part() -> None:
    passed = {"nodeid": "tests/security/test_a.py::test_x", "outcome": "passed"}
    for other in ("failed", "skipped", "error", "xpassed"):
        figures = {"returncode": 0, "tests": [passed, {**passed, "outcome": other}]}
        assert not checks.pytest_suite(figures, "attacks")[0].ok
    assert checks.pytest_suite({"returncode": 0, "tests": [passed]}, "attacks")[0].ok
    assert not checks.pytest_suite({"returncode": 0, "tests": []}, "attacks")[0].ok


def test_the_report_lists_each_part_with_its_command_and_verdict(tmp_path: Path) -> None:
    figures = clean_run(object_differences={"m1": ["summary.json"]})
    write_result(
        "kills",
        command="make chaos CHAOS_ARGS='--only kills --seed 3'",
        seed=3,
        elapsed_s=12.0,
        figures=figures,
        checks=checks.kills(figures, wanted=20),
        directory=tmp_path,
    )

    text = report.render(read_results(tmp_path))

    assert "make chaos CHAOS_ARGS='--only kills --seed 3'" in text
    assert "**NOT MET**" in text
    assert "1 differences of 200 objects" in text
    assert "not run yet" in text  # the parts this run did not cover are named as such
    assert "## Not tested here" in text
