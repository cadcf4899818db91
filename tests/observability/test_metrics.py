"""Stage metrics on the worker's metrics endpoint, and every metric the dashboard queries.

One module-scoped run: a worker on a Prometheus-serving runtime (the one `polyvision worker`
builds) with the metrics interceptor runs a stage step (fresh, then answered by its manifest),
an activity that fails once, one whose heartbeat times out, and workflows that complete, fail
and are cancelled; the endpoint is then scraped once.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from api.request_metrics import ApiMetrics, MetricsMiddleware
from polyvision.stage import StageStep
from polyvision.storage.objects import open_object_store
from polyvision.telemetry import LoggingInterceptor
from polyvision.temporal.activity_metrics import ActivityMetricsInterceptor
from polyvision.temporal.client import connect
from programs.worker.runtime import build_runtime
from tests.fixtures.ports import free_port
from tests.fixtures.temporal import TemporalTestServer

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "polyvision.json"
ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yaml"


@dataclass
class ChunkInput:
    organization_id: str
    match_id: str
    revision: int
    chunk: int


@dataclass
class ChunkOutput:
    key: str
    frames: int
    from_manifest: bool = False


class StageActivities:
    def __init__(self, objects_url: str) -> None:
        self._objects_url = objects_url
        self.flaky_attempts = 0

    @activity.defn(name="demo_stitch_chunk")
    async def stitch_chunk(self, input: ChunkInput) -> ChunkOutput:
        """A stage step: manifest first, then 'work', then the manifest."""
        async with open_object_store(
            self._objects_url, secret=b"s" * 32, public_base_url="http://t"
        ) as objects:
            step = StageStep.for_match(
                objects,
                input,
                stage="stitch",
                inputs={"chunk": input.chunk},
                code_version="v1",
                output_type=ChunkOutput,
                folder=(f"chunk-{input.chunk:04d}",),
            )
            recorded = await step.recorded()
            if recorded is not None:
                return recorded
            await asyncio.sleep(0.05)
            return await step.record(ChunkOutput(key="panorama.mp4", frames=250))

    @activity.defn(name="demo_flaky")
    async def flaky(self) -> str:
        self.flaky_attempts += 1
        if activity.info().attempt == 1:
            raise RuntimeError("first attempt fails")
        return "ok"

    @activity.defn(name="demo_stalls")
    async def stalls(self) -> str:
        """Beats once, goes quiet past the heartbeat timeout, then beats (and is cancelled)."""
        if activity.info().attempt > 1:
            return "recovered"
        activity.heartbeat()
        await asyncio.sleep(2.5)
        for _ in range(25):  # the next beat learns of the timeout: cancelled here
            activity.heartbeat()
            await asyncio.sleep(0.2)
        return "never cancelled"


@workflow.defn(sandboxed=False)
class StageMetricsWorkflow:
    @workflow.run
    async def run(self, input: ChunkInput) -> list[str]:
        timeout = timedelta(seconds=20)
        first = await workflow.execute_activity(
            "demo_stitch_chunk", input, start_to_close_timeout=timeout, result_type=ChunkOutput
        )
        again = await workflow.execute_activity(
            "demo_stitch_chunk", input, start_to_close_timeout=timeout, result_type=ChunkOutput
        )
        flaky = await workflow.execute_activity(
            "demo_flaky",
            start_to_close_timeout=timeout,
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
            result_type=str,
        )
        stalled = await workflow.execute_activity(
            "demo_stalls",
            start_to_close_timeout=timeout,
            heartbeat_timeout=timedelta(seconds=1),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
            result_type=str,
        )
        return [str(first.from_manifest), str(again.from_manifest), flaky, stalled]


@workflow.defn(sandboxed=False)
class FailingWorkflow:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("fails on purpose", non_retryable=True)


@workflow.defn(sandboxed=False)
class WaitingWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@dataclass(frozen=True)
class Scrape:
    samples: dict[str, list[tuple[dict[str, str], float]]]
    results: list[str]

    def value(self, name: str, **labels: str) -> float:
        return sum(
            value
            for sample_labels, value in self.samples.get(name, [])
            if all(sample_labels.get(k) == v for k, v in labels.items())
        )


def _parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


@pytest_asyncio.fixture(scope="module")
async def worker_scrape(
    temporal_server: TemporalTestServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Scrape]:
    port = free_port()
    runtime = build_runtime(f"127.0.0.1:{port}", global_tags={"service": "polyvision-worker"})
    client = await connect(temporal_server.address, temporal_server.namespace.name, runtime)
    task_queue = f"pv-metrics-{uuid.uuid4().hex[:12]}"
    objects_url = f"file://{tmp_path_factory.mktemp('objects')}"
    activities = StageActivities(objects_url)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[StageMetricsWorkflow, FailingWorkflow, WaitingWorkflow],
        activities=[activities.stitch_chunk, activities.flaky, activities.stalls],
        interceptors=[LoggingInterceptor(), ActivityMetricsInterceptor()],
    ):
        results = await client.execute_workflow(
            StageMetricsWorkflow.run,
            ChunkInput("org", str(uuid.uuid4()), 1, 3),
            id=f"metrics-{task_queue}",
            task_queue=task_queue,
        )
        with pytest.raises(WorkflowFailureError):
            await client.execute_workflow(
                FailingWorkflow.run, id=f"fail-{task_queue}", task_queue=task_queue
            )
        waiting = await client.start_workflow(
            WaitingWorkflow.run, id=f"wait-{task_queue}", task_queue=task_queue
        )
        await waiting.cancel()
        with pytest.raises(WorkflowFailureError):
            await waiting.result()
    text = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    )
    yield Scrape(_parse(text), results)


async def test_a_stage_step_is_timed_counted_and_scraped(worker_scrape: Scrape) -> None:
    scrape = worker_scrape
    assert scrape.results == ["False", "True", "ok", "recovered"]
    stage = "demo_stitch_chunk"
    # The fresh attempt and the manifest answer, each timed under its outcome.
    assert scrape.value("polyvision_stage_duration_seconds_count", stage=stage, outcome="done") == 1
    assert (
        scrape.value("polyvision_stage_duration_seconds_count", stage=stage, outcome="cached") == 1
    )
    fresh = scrape.value("polyvision_stage_duration_seconds_sum", stage=stage, outcome="done")
    assert 0.05 <= fresh < 5
    # The SDK's labels come along; the buckets reach a whole-match stage's length.
    [(labels, _)] = [
        s
        for s in scrape.samples["polyvision_stage_duration_seconds_bucket"]
        if s[0]["stage"] == stage and s[0]["outcome"] == "done" and float(s[0]["le"]) == 1800
    ]
    assert labels["namespace"] and labels["task_queue"].startswith("pv-metrics-")
    # Frames of fresh work only: 250, not 500 (the manifest answer did no work).
    assert scrape.value("polyvision_stage_frames_total", stage=stage) == 250
    assert scrape.value("polyvision_stage_frames_per_second_count", stage=stage) == 1
    fps = scrape.value("polyvision_stage_frames_per_second_sum", stage=stage)
    assert 250 / 5 < fps <= 250 / 0.05
    # Retries: the flaky activity's and the stalled one's second attempts.
    assert scrape.value("polyvision_activity_retries_total", stage="demo_flaky", attempt="2") == 1
    assert scrape.value("polyvision_activity_retries_total", stage="demo_stalls") == 1
    assert scrape.value("polyvision_stage_duration_seconds_count", stage="demo_flaky") == 2
    # The stalled attempt: timed out by the server for its missed heartbeat, seen by the worker.
    assert scrape.value("polyvision_activity_heartbeat_timeouts_total", stage="demo_stalls") == 1
    assert (
        scrape.value(
            "polyvision_stage_duration_seconds_count", stage="demo_stalls", outcome="cancelled"
        )
        == 1
    )
    assert scrape.value("polyvision_activity_heartbeat_timeouts_total", stage="demo_flaky") == 0


# PromQL functions, keywords and label names are not metric names; a metric name is followed by
# a selector ({...}) or a range/closing bracket in the dashboard's expressions.
_METRIC = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[)")


def dashboard_metric_names() -> set[str]:
    """Every metric name the dashboard's PromQL (panels and variables) selects."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "definition") and isinstance(value, str):
                    exprs.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard)
    names: set[str] = set()
    for expr in exprs:
        names |= set(_METRIC.findall(expr))
        # label_values(metric, label) in variable queries
        names |= set(re.findall(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,", expr))
    return names


async def test_every_metric_the_dashboard_queries_is_emitted(worker_scrape: Scrape) -> None:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    metrics = ApiMetrics()
    app = MetricsMiddleware(Starlette(routes=[Route("/hello", hello)]), metrics)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        assert (await client.get("/hello")).status_code == 200
    emitted = set(worker_scrape.samples) | set(_parse(generate_latest(metrics.registry).decode()))

    # The alert rules too: an alert on a metric nothing emits would never fire.
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    alerting = {
        name
        for group in rules["groups"]
        for rule in group["rules"]
        for name in _METRIC.findall(rule["expr"])
    }
    assert {"polyvision_activity_retries_total", "temporal_worker_task_slots_used"} <= alerting
    missing_alerts = sorted(alerting - emitted)
    assert not missing_alerts, f"alert rules query metrics nothing emits: {missing_alerts}"

    queried = dashboard_metric_names()
    assert "polyvision_stage_duration_seconds_bucket" in queried
    assert "temporal_workflow_completed_total" in queried
    missing = sorted(queried - emitted)
    assert not missing, f"the dashboard queries metrics nothing emits: {missing}"
