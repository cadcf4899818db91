"""The Temporal stack: namespace config, its idempotent application, the dev server, metrics."""

from __future__ import annotations

import asyncio
import os
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from polyvision.temporal import search_attributes
from polyvision.temporal.apply import apply_namespace
from polyvision.temporal.client import connect
from polyvision.temporal.config import (
    TemporalConfigError,
    dynamic_config_flags,
    load_dynamic_config,
    load_namespace_config,
)
from polyvision.temporal.devserver import DevServer, DevServerError
from polyvision.temporal.queues import QueueRole
from programs.worker.plan import QueuePlan
from programs.worker.runtime import build_runtime
from tests.fixtures.ports import free_port
from tests.fixtures.temporal import TemporalTestServer, running_worker
from workflows.health import HealthCheckInput, HealthCheckWorkflow

# -- config files -----------------------------------------------------------------------------


def test_namespace_config_loads() -> None:
    config = load_namespace_config()
    assert config.name == "polyvision"
    assert config.retention == timedelta(days=90)
    assert {a.name: a.type for a in config.search_attributes} == {
        key.name: "Keyword" for key in search_attributes.ALL_KEYS
    }


def test_namespace_config_rejects_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "namespace.yaml"
    bad.write_text("namespace: x\nretention_days: 3\nsearch_attributes: {MatchId: Keywrd}\n")
    with pytest.raises(TemporalConfigError, match="unknown type"):
        load_namespace_config(bad)
    bad.write_text("namespace: x\nretention_days: true\n")
    with pytest.raises(TemporalConfigError, match="retention_days"):
        load_namespace_config(bad)
    with pytest.raises(TemporalConfigError, match="not found"):
        load_namespace_config(tmp_path / "missing.yaml")


def test_dynamic_config_renders_dev_server_flags(tmp_path: Path) -> None:
    values = load_dynamic_config()
    assert values["limit.historyCount.error"] == 51200
    assert values["system.forceSearchAttributesCacheRefreshOnRead"] is True
    flags = dynamic_config_flags(values)
    assert flags[0] == "--dynamic-config-value"
    assert "frontend.enableUpdateWorkflowExecution=true" in flags
    constrained = tmp_path / "dc.yaml"
    constrained.write_text("limit.maxIDLength:\n  - value: 255\n    constraints: {namespace: x}\n")
    with pytest.raises(TemporalConfigError, match="constraints"):
        load_dynamic_config(constrained)


# -- against the dev server -------------------------------------------------------------------


async def test_apply_namespace_is_idempotent(temporal_client: Client) -> None:
    # A namespace of its own, so the first run really registers it and adds every attribute.
    config = load_namespace_config().with_name(f"pv-test-ns-{uuid.uuid4().hex[:8]}")
    first = await apply_namespace(temporal_client, config)
    assert first.registered
    assert first.added_search_attributes == tuple(a.name for a in config.search_attributes)
    second = await apply_namespace(temporal_client, config)
    assert not second.changed

    listed = await temporal_client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=config.name)
    )
    for key in search_attributes.ALL_KEYS:
        assert listed.custom_attributes[key.name] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    described = await temporal_client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=config.name)
    )
    assert described.config.workflow_execution_retention_ttl.ToTimedelta() == timedelta(days=90)


async def test_session_namespace_already_applied(
    temporal_client: Client, temporal_server: TemporalTestServer
) -> None:
    result = await apply_namespace(temporal_client, temporal_server.namespace)
    assert not result.changed


async def test_devserver_stop_leaves_no_process(tmp_path: Path) -> None:
    server = DevServer(tmp_path, headless=True)
    async with server:
        pid = server.pid
        assert pid is not None and server.running
        client = await connect(server.address, server.namespace.name)
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=server.namespace.name)
        )
    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ProcessLookupError):  # nothing left in its process group either
        os.killpg(pid, 0)
    assert server.db_path.exists()


async def test_devserver_restarts_on_its_own_port_with_its_state(tmp_path: Path) -> None:
    """A restart right after a stop, while the old connections linger in TIME_WAIT, binds the
    same port again (the chaos suite restarts the server mid-run) and keeps the namespace."""
    server = DevServer(tmp_path, headless=True)
    async with server:
        port = server.port
        client = await connect(server.address, server.namespace.name)
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=server.namespace.name)
        )
        await server.stop()
        await server.start(timeout=60)
        assert server.port == port
        client = await connect(server.address, server.namespace.name)
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=server.namespace.name)
        )


async def test_devserver_start_failure_reports_log(tmp_path: Path) -> None:
    server = DevServer(tmp_path, headless=True, extra_args=["--no-such-flag"])
    with pytest.raises(DevServerError, match="no-such-flag"):
        await server.start(timeout=20)
    assert not server.running


@workflow.defn
class TagMatchWorkflow:
    """Upserts the match search attributes, like the match workflow will."""

    @workflow.run
    async def run(self, match_id: str) -> str:
        workflow.upsert_search_attributes(
            [
                search_attributes.MATCH_ID.value_set(match_id),
                search_attributes.PIPELINE_STAGE.value_set("ingest"),
            ]
        )
        return match_id


async def test_upserted_match_id_is_searchable(temporal_client: Client, task_queue: str) -> None:
    match_id = f"m-{uuid.uuid4().hex[:8]}"
    queue = f"{task_queue}-cpu"
    # Unsandboxed: the sandbox would re-import this test module (and pytest) for every run.
    async with Worker(
        temporal_client,
        task_queue=queue,
        workflows=[TagMatchWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        await temporal_client.execute_workflow(
            TagMatchWorkflow.run, match_id, id=f"tag-{match_id}", task_queue=queue
        )
    # Visibility is eventually consistent, even on the dev server's SQLite.
    found = []
    for _ in range(100):
        found = [wf async for wf in temporal_client.list_workflows(f'MatchId="{match_id}"')]
        if found:
            break
        await asyncio.sleep(0.1)
    assert [wf.id for wf in found] == [f"tag-{match_id}"]
    attrs = found[0].typed_search_attributes
    assert attrs.get(search_attributes.MATCH_ID) == match_id
    assert attrs.get(search_attributes.PIPELINE_STAGE) == "ingest"


async def test_worker_metrics_share_the_sdk_endpoint(
    temporal_server: TemporalTestServer, task_queue: str
) -> None:
    port = free_port()
    runtime = build_runtime(f"127.0.0.1:{port}", global_tags={"service": "test"})
    client = await connect(temporal_server.address, temporal_server.namespace.name, runtime)
    queue = f"{task_queue}-cpu"
    async with running_worker(client, [QueuePlan(QueueRole.cpu, queue, 2)]):
        result = await client.execute_workflow(
            HealthCheckWorkflow.run,
            HealthCheckInput(queues=[queue]),
            id=f"health-{task_queue}",
            task_queue=queue,
        )
    assert result.answers[0].queue == queue

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    text = await asyncio.to_thread(scrape)
    # Our activity counter and the SDK's own worker metrics, on one endpoint.
    ours = [line for line in text.splitlines() if line.startswith("polyvision_health_pings")]
    assert ours, text[:2000]
    assert f'task_queue="{queue}"' in ours[0] and ours[0].endswith(" 1")
    # Durations in seconds with unit suffixes: the names deploy/grafana's dashboard queries.
    assert "temporal_activity_execution_latency_seconds_bucket" in text
