"""bench.pipeline's bookkeeping: CPU samples given to the stages running, the projection."""

from __future__ import annotations

import pytest

from bench.pipeline import Span, attribute_cpu, project


def test_cpu_goes_to_the_stages_running_and_is_split_between_overlapping_ones() -> None:
    samples = [(0.0, 0.0), (1.0, 2.0), (2.0, 4.0), (3.0, 5.0), (4.0, 5.5)]
    spans = [Span("stitch", 0.0, 2.0), Span("detect", 1.0, 3.0)]
    cpu, wall = attribute_cpu(samples, spans)
    # 0-1: stitch alone (2 s); 1-2: both (1 s each); 2-3: detect alone (1 s); 3-4: nothing.
    assert cpu == pytest.approx({"stitch": 3.0, "detect": 2.0, "orchestration": 0.5})
    assert wall == pytest.approx({"stitch": 2.0, "detect": 2.0})


def test_wall_time_of_a_stage_counts_overlapping_activities_once() -> None:
    spans = [Span("detect", 0.0, 2.0), Span("detect", 1.0, 3.0), Span("detect", 5.0, 6.0)]
    _, wall = attribute_cpu([(0.0, 0.0), (6.0, 1.0)], spans)
    assert wall == pytest.approx({"detect": 4.0})


def test_the_projection_spreads_chunked_stages_over_cores_and_not_the_others() -> None:
    # 100 frames: detect 1 s a frame, track 0.01 s a frame; the target has 270,000 frames.
    stage_cpu = {"detect": 100.0, "track": 1.0}
    hours = project(stage_cpu, 100, {"pixels": 1.0, "detect": 2.0})
    detect_h, track_h = 2.0 * 270_000 / 3600, 0.01 * 270_000 / 3600
    assert hours["cpu_hours"] == pytest.approx(detect_h + track_h, abs=0.01)
    assert hours["hours_on_16_cores"] == pytest.approx(detect_h / 16 + track_h, abs=0.01)
