"""Stage metrics recorded where every activity passes: a worker interceptor.

Recorded through the SDK's metric meter (`temporalio.activity.metric_meter`), so they are served
on the worker's one metrics endpoint next to the SDK's own (`programs.worker.runtime`), with the
SDK's ``namespace``, ``task_queue`` and ``activity_type`` labels added:

- ``polyvision_stage_duration_seconds`` (histogram; label ``stage``, the activity type, and
  ``outcome``: ``done``, ``cached`` (a matching manifest answered, no work done), ``failed``,
  ``cancelled``): what the Grafana dashboard's stage panels query;
- ``polyvision_stage_frames_total`` (counter; ``stage``) and
  ``polyvision_stage_frames_per_second`` (histogram; ``stage``): frames of fresh work, from an
  output's integer ``frames`` field (the chunk stages' outputs carry one), so
  ``rate(polyvision_stage_frames_total[5m])`` is a stage's throughput across the fleet;
- ``polyvision_activity_retries_total`` (counter; ``stage``, ``attempt`` capped at ``5+``): an
  attempt after the first started;
- ``polyvision_activity_heartbeat_timeouts_total`` (counter; ``stage``): this worker learned
  that the server timed out an attempt it was still running, after a silence between heartbeats
  longer than the heartbeat timeout. A worker that died cannot count its own timeout; the retry
  counter (the next attempt) still shows it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

STAGE_DURATION = "polyvision_stage_duration"
STAGE_FRAMES = "polyvision_stage_frames"
STAGE_FPS = "polyvision_stage_frames_per_second"
ACTIVITY_RETRIES = "polyvision_activity_retries"
HEARTBEAT_TIMEOUTS = "polyvision_activity_heartbeat_timeouts"

#: Bucket boundaries (seconds) for stage durations: a cached answer in milliseconds up to a
#: whole-match stage (tracking, packaging) in tens of minutes.
STAGE_DURATION_BUCKETS_S = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
#: Bucket boundaries for frames per second: CPU detection at a few fps to cached remaps at 1000s.
STAGE_FPS_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)


def histogram_bucket_overrides() -> dict[str, list[float]]:
    """Bucket boundaries for the SDK's Prometheus exporter (`PrometheusConfig`), by metric name."""
    return {
        STAGE_DURATION: [float(b) for b in STAGE_DURATION_BUCKETS_S],
        STAGE_FPS: [float(b) for b in STAGE_FPS_BUCKETS],
    }


def output_frames(output: Any) -> int | None:
    """Frames of fresh work an activity output reports: its int ``frames`` field, else None.

    None as well for an answer from a matching manifest (``from_manifest`` set): no frame was
    processed by this attempt.
    """
    if not dataclasses.is_dataclass(output) or isinstance(output, type):
        return None
    if getattr(output, "from_manifest", False):
        return None
    frames = getattr(output, "frames", None)
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 0:
        return None
    return frames


class _Beats:
    """This attempt's heartbeats (monotonic seconds), shared by inbound and outbound.

    The longest silence is kept, not just the last beat: the beat that tells the worker the
    attempt timed out comes right after the silence that caused it.
    """

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.longest_gap = 0.0

    def beat(self) -> None:
        now = time.monotonic()
        self.longest_gap = max(self.longest_gap, now - self.last)
        self.last = now

    def longest_silence(self) -> float:
        return max(self.longest_gap, time.monotonic() - self.last)


class _Outbound(ActivityOutboundInterceptor):
    def __init__(self, next: ActivityOutboundInterceptor, beats: _Beats) -> None:
        super().__init__(next)
        self._beats = beats

    def heartbeat(self, *details: Any) -> None:
        self._beats.beat()
        self.next.heartbeat(*details)


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor) -> None:
        super().__init__(next)
        self._beats = _Beats()

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        super().init(_Outbound(outbound, self._beats))

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        meter = activity.metric_meter()
        stage = {"stage": info.activity_type}
        if info.attempt > 1:
            attempt = str(info.attempt) if info.attempt < 5 else "5+"
            meter.create_counter(
                ACTIVITY_RETRIES, "Activity attempts after the first, by stage."
            ).add(1, {**stage, "attempt": attempt})
        started = time.monotonic()
        self._beats.last, self._beats.longest_gap = started, 0.0
        try:
            result = await self.next.execute_activity(input)
        except BaseException as exc:
            # A synchronous activity is cancelled by an exception raised into its thread.
            cancelled = isinstance(exc, asyncio.CancelledError) or _cancelled()
            outcome = "cancelled" if cancelled else "failed"
            _record_duration(meter, time.monotonic() - started, {**stage, "outcome": outcome})
            if cancelled:
                self._count_heartbeat_timeout(meter, info.heartbeat_timeout, stage)
            raise
        elapsed = time.monotonic() - started
        frames = output_frames(result)
        cached = bool(getattr(result, "from_manifest", False))
        _record_duration(meter, elapsed, {**stage, "outcome": "cached" if cached else "done"})
        if frames:
            meter.create_counter(
                STAGE_FRAMES, "Frames processed (fresh work, not manifest answers), by stage."
            ).add(frames, stage)
            if elapsed > 0:
                meter.create_histogram_float(
                    STAGE_FPS, "Frames per second of one activity's fresh work, by stage."
                ).record(frames / elapsed, stage)
        return result

    def _count_heartbeat_timeout(
        self, meter: MetricMeter, heartbeat_timeout: timedelta | None, stage: dict[str, str]
    ) -> None:
        details = activity.cancellation_details()
        if details is None or not (details.timed_out or details.not_found):
            return
        if heartbeat_timeout is None:
            return
        if self._beats.longest_silence() < heartbeat_timeout.total_seconds():
            return  # timed out for another reason (start-to-close), not a missed heartbeat
        meter.create_counter(
            HEARTBEAT_TIMEOUTS, "Attempts the server timed out for a missed heartbeat, by stage."
        ).add(1, stage)


def _cancelled() -> bool:
    try:
        return activity.is_cancelled()
    except RuntimeError:
        return False


def _record_duration(meter: MetricMeter, elapsed_s: float, labels: dict[str, str]) -> None:
    meter.create_histogram_timedelta(
        STAGE_DURATION, "Time one activity attempt of a stage took, by stage and outcome."
    ).record(timedelta(seconds=elapsed_s), labels)


class ActivityMetricsInterceptor(Interceptor):
    """Worker interceptor recording stage durations, frames, retries and heartbeat timeouts."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)
