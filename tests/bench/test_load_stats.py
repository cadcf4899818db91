"""bench.load_stats: nearest-rank percentiles, the measured window, windows pooled."""

from __future__ import annotations

import pytest

from bench.load_stats import Sample, Window, in_window, percentile, summarize


def test_percentiles_are_measured_values_by_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 1..100, unsorted
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile(values, 0) == 1.0
    # Fewer than 100 values: the p99 is the largest.
    assert percentile([3.0, 1.0, 2.0], 99) == 3.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


@pytest.mark.parametrize(("values", "q"), [([], 50.0), ([1.0], -1.0), ([1.0], 100.5)])
def test_percentile_refuses_nothing_and_out_of_range(values: list[float], q: float) -> None:
    with pytest.raises(ValueError):
        percentile(values, q)


def test_the_window_keeps_what_finished_inside_it_and_counts_errors() -> None:
    samples = [
        Sample(0.5, 100.0, True),  # ramp-up: left out
        Sample(1.0, 10.0, True),
        Sample(1.5, 30.0, False),
        Sample(2.9, 20.0, True),
        Sample(3.0, 500.0, True),  # at the end: left out
    ]
    window = in_window(samples, 1.0, 3.0)
    assert window == Window(latencies_ms=[10.0, 20.0], errors=1, seconds=2.0)
    with pytest.raises(ValueError):
        in_window(samples, 2.0, 2.0)


def test_windows_pool_requests_time_and_latencies() -> None:
    figures = summarize(
        [Window([10.0, 20.0], errors=1, seconds=2.0), Window([30.0, 40.0, 50.0], 0, 3.0)]
    )
    assert (figures.requests, figures.errors, figures.window_s) == (6, 1, 5.0)
    assert figures.rps == pytest.approx(1.0)  # 5 successful requests in 5 s
    assert (figures.p50_ms, figures.p99_ms) == (30.0, 50.0)
    assert figures.as_json()["rps"] == 1.0


def test_a_window_without_successes_has_no_latency() -> None:
    figures = summarize([Window([], errors=3, seconds=1.0)])
    assert (figures.requests, figures.errors, figures.rps) == (3, 3, 0.0)
    assert figures.p50_ms is None and figures.p99_ms is None
