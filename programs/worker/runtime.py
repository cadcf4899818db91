"""The Temporal SDK runtime of a worker process, serving Prometheus metrics.

The SDK exports its own worker metrics (poll latency, slots, task failures) and every metric our
activities record through `activity.metric_meter()` on the same endpoint, so one scrape target
per worker pod covers both; the stage metrics (`polyvision.temporal.activity_metrics`) are among
them.
"""

from __future__ import annotations

from collections.abc import Mapping

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from polyvision.temporal.activity_metrics import histogram_bucket_overrides


def build_runtime(
    metrics_bind_address: str | None,
    *,
    global_tags: Mapping[str, str] | None = None,
) -> Runtime:
    """Create a runtime, optionally serving ``/metrics`` for Prometheus.

    Each runtime owns a thread pool and (with metrics) an HTTP listener: build one per process
    and pass it to `polyvision.temporal.client.connect`.

    Args:
        metrics_bind_address: ``host:port`` to serve ``/metrics`` on; no metrics if None.
        global_tags: Labels added to every metric (e.g. ``{"service": "worker"}``).

    Returns:
        The runtime.
    """
    metrics = (
        # Seconds with unit suffixes: the names dashboards expect
        # (temporal_activity_execution_latency_seconds_bucket), not the SDK's millisecond default.
        PrometheusConfig(
            bind_address=metrics_bind_address,
            counters_total_suffix=True,
            unit_suffix=True,
            durations_as_seconds=True,
            # Stage durations span milliseconds (a manifest answer) to tens of minutes.
            histogram_bucket_overrides=histogram_bucket_overrides(),
        )
        if metrics_bind_address
        else None
    )
    return Runtime(telemetry=TelemetryConfig(metrics=metrics, global_tags=dict(global_tags or {})))
