"""One trace from a match's start to its last activity, through Temporal's tracing interceptor.

The real `MatchWorkflow` (and its batch children) run on workers built from a client that has
the tracing interceptor, with the stand-in activities; the spans go to an in-memory exporter.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

from polyvision.telemetry import configure_tracing, otlp_endpoint_from_env, tracing_interceptor
from polyvision.temporal.client import connect
from polyvision.temporal.queues import QueueRole, queue_names
from tests.fixtures.standin_workers import SHORT_MATCH, standin_workers
from tests.fixtures.temporal import TemporalTestServer
from tests.workflows.standins import StandinActivities
from workflows.match import MatchWorkflow
from workflows.types import MatchInput


def _by_name(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def _parent(spans: Sequence[ReadableSpan], span: ReadableSpan) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} has no parent"
    [parent] = [s for s in spans if s.context.span_id == span.parent.span_id]
    return parent


async def test_a_match_is_one_trace_from_start_to_last_activity(
    temporal_server: TemporalTestServer, task_queue: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client: Client = await connect(
        temporal_server.address,
        temporal_server.namespace.name,
        interceptors=[tracing_interceptor(provider.get_tracer("test"))],
    )
    suffix = f"-{task_queue}"
    org, match = str(uuid.uuid4()), str(uuid.uuid4())
    given = MatchInput(
        organization_id=org,
        match_id=match,
        left_key=f"orgs/{org}/uploads/u/left.mp4",
        right_key=f"orgs/{org}/uploads/u/right.mp4",
        rig_key=f"orgs/{org}/uploads/u/rig.json",
        task_queue_suffix=suffix,
    )
    workflow_id = f"match-{match}"
    async with standin_workers(client, suffix, StandinActivities(SHORT_MATCH)):
        await client.execute_workflow(
            MatchWorkflow.run,
            given,
            id=workflow_id,
            task_queue=queue_names(suffix)[QueueRole.cpu],
        )
    spans = exporter.get_finished_spans()
    provider.shutdown()
    # One trace holds everything: the start, the workflows, every activity.
    assert len({span.context.trace_id for span in spans}) == 1
    [start] = _by_name(spans, "StartWorkflow:MatchWorkflow")
    assert start.parent is None
    assert start.attributes is not None and start.attributes["temporalWorkflowID"] == workflow_id
    [run] = _by_name(spans, "RunWorkflow:MatchWorkflow")
    assert _parent(spans, run) is start

    # The workflow's spans hang under the span that started it: the interceptor ends
    # RunWorkflow at once (a zero-length marker, so a replay re-emits nothing), and what the
    # workflow does next (StartActivity, StartChildWorkflow, CompleteWorkflow) continues the
    # context it was started with. Each RunActivity is a child of its StartActivity.
    [schedule_ingest] = _by_name(spans, "StartActivity:ingest")
    assert _parent(spans, schedule_ingest) is start
    [run_ingest] = _by_name(spans, "RunActivity:ingest")
    assert _parent(spans, run_ingest) is schedule_ingest
    [complete] = _by_name(spans, "CompleteWorkflow:MatchWorkflow")
    assert _parent(spans, complete) is start

    # Children continue the trace: StartChildWorkflow → RunWorkflow and their activities.
    for child, activities in (
        ("StitchDetectBatchWorkflow", ("stitch_chunk", "detect_chunk")),
        ("RenderBatchWorkflow", ("vcam_render",)),
    ):
        [child_start] = _by_name(spans, f"StartChildWorkflow:{child}")
        assert _parent(spans, child_start) is start
        [child_run] = _by_name(spans, f"RunWorkflow:{child}")
        assert _parent(spans, child_run) is child_start
        for activity in activities:
            runs = _by_name(spans, f"RunActivity:{activity}")
            assert len(runs) == 3  # SHORT_MATCH: three chunks
            for span in runs:
                scheduled = _parent(spans, span)
                assert scheduled.name == f"StartActivity:{activity}"
                assert _parent(spans, scheduled) is child_start

    # The last activity, index_match, is in the same trace, scheduled by the match.
    [run_index] = _by_name(spans, "RunActivity:index_match")
    assert _parent(spans, _parent(spans, run_index)) is start
    assert max(spans, key=lambda span: span.end_time or 0).name in {
        "CompleteWorkflow:MatchWorkflow",
        "RunActivity:index_match",
    }
    counts = Counter(span.name for span in spans)
    # Printed for the record (pytest -s): the span names of one match-like run.
    print(sorted(counts.items()))


def test_no_endpoint_means_no_exporter_and_the_standard_variables_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PV_OTLP_ENDPOINT", raising=False)
    assert configure_tracing("polyvision-test") is None
    assert otlp_endpoint_from_env({}) is None
    assert (
        otlp_endpoint_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"})
        == "http://collector:4318/v1/traces"
    )
    assert (
        otlp_endpoint_from_env(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/custom",
            }
        )
        == "http://b:4318/custom"
    )
    assert (
        otlp_endpoint_from_env({"PV_OTLP_ENDPOINT": "http://c:4318"}) == "http://c:4318/v1/traces"
    )
