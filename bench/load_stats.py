"""The load benchmarks' bookkeeping: latency percentiles and per-endpoint figures.

Pure and free of the load generator (locust monkey-patches the standard library when it is
imported, so only `bench.load_client`, run in a process of its own, imports it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One request the load generator made.

    Attributes:
        at: When it finished (seconds on the generator's monotonic clock).
        latency_ms: Time from sending it to its last byte read.
        ok: Answered with the expected status (anything else, or no answer, is an error).
    """

    at: float
    latency_ms: float
    ok: bool


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) of ``values`` by the nearest-rank method.

    Nearest rank returns a latency that was measured (no interpolation between two requests),
    and the p99 of fewer than 100 requests is their maximum.

    Raises:
        ValueError: ``values`` is empty or ``q`` is outside [0, 100].
    """
    if not values:
        raise ValueError("no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within [0, 100], not {q}")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class EndpointFigures:
    """What one endpoint did under load, over the measured window.

    Attributes:
        requests: Requests that finished inside the window (errors included).
        errors: Of those, the ones without the expected answer.
        rps: Successful requests per second over the window.
        p50_ms: Median latency of the successful requests.
        p99_ms: 99th percentile latency of the successful requests.
        window_s: Length of the window.
    """

    requests: int
    errors: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    window_s: float

    def as_json(self) -> dict[str, Any]:
        """Rounded for the results file."""
        record = asdict(self)
        for name in ("rps", "p50_ms", "p99_ms", "window_s"):
            if record[name] is not None:
                record[name] = round(record[name], 2)
        return record


@dataclass(frozen=True)
class Window:
    """The requests of one measured window: successful latencies and the error count."""

    latencies_ms: list[float]
    errors: int
    seconds: float


def in_window(samples: Iterable[Sample], start: float, end: float) -> Window:
    """The samples that finished within ``[start, end)``: the window leaves out the load
    generator's ramp-up and the requests cut short when it stops.

    Raises:
        ValueError: ``end`` is not after ``start``.
    """
    if end <= start:
        raise ValueError(f"empty window: {start} .. {end}")
    inside = [s for s in samples if start <= s.at < end]
    return Window(
        latencies_ms=[s.latency_ms for s in inside if s.ok],
        errors=sum(1 for s in inside if not s.ok),
        seconds=end - start,
    )


def summarize(windows: Sequence[Window]) -> EndpointFigures:
    """One endpoint's figures over one or more windows: requests and time add up, and the
    percentiles are taken over every successful latency of all of them.

    Raises:
        ValueError: no windows.
    """
    if not windows:
        raise ValueError("no windows")
    latencies = [value for window in windows for value in window.latencies_ms]
    seconds = sum(window.seconds for window in windows)
    errors = sum(window.errors for window in windows)
    return EndpointFigures(
        requests=len(latencies) + errors,
        errors=errors,
        rps=len(latencies) / seconds,
        p50_ms=percentile(latencies, 50) if latencies else None,
        p99_ms=percentile(latencies, 99) if latencies else None,
        window_s=seconds,
    )
