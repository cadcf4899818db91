"""Worker versioning: builds report a version; a running match-like workflow survives an upgrade.

A workflow starts on build A, does its first step there and waits; build A stops, build B starts
and becomes the deployment's current version; the workflow (auto-upgrade) finishes on build B.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError
from temporalio.worker import Worker

from programs.worker.versioning import (
    VersioningSettings,
    default_build_id,
    deployment_config,
    set_current_version,
    source_digest,
    worker_version,
)


def _step_on(build: str) -> Callable[[str], object]:
    @activity.defn(name="versioned_step")
    async def step(name: str) -> str:
        return f"{name}@{build}"

    return step


@workflow.defn(sandboxed=False)
class UpgradeWorkflow:
    """Like a match: a stage, a wait (the next chunks), another stage."""

    def __init__(self) -> None:
        self._go = False
        self.steps: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        timeout = timedelta(seconds=10)
        self.steps.append(
            await workflow.execute_activity(
                "versioned_step", "ingest", start_to_close_timeout=timeout, result_type=str
            )
        )
        await workflow.wait_condition(lambda: self._go)
        self.steps.append(
            await workflow.execute_activity(
                "versioned_step", "index", start_to_close_timeout=timeout, result_type=str
            )
        )
        return self.steps

    @workflow.signal
    def go(self) -> None:
        self._go = True

    @workflow.query
    def done(self) -> list[str]:
        return self.steps


def _worker(client: Client, task_queue: str, version: WorkerDeploymentVersion) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[UpgradeWorkflow],
        activities=[_step_on(version.build_id)],
        deployment_config=deployment_config(version, use_worker_versioning=True),
    )


async def _make_current(client: Client, version: WorkerDeploymentVersion) -> None:
    """Set the current version once the server has seen the version's pollers."""
    for _ in range(100):
        try:
            await set_current_version(client, version)
            return
        except RPCError:
            await asyncio.sleep(0.1)
    await set_current_version(client, version)


async def _until_steps(handle: WorkflowHandle[UpgradeWorkflow, list[str]], count: int) -> None:
    for _ in range(200):
        if len(await handle.query(UpgradeWorkflow.done)) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the workflow did not get there")


async def test_a_running_workflow_moves_to_the_new_build(
    temporal_client: Client, task_queue: str
) -> None:
    deployment = f"pv-test-{uuid.uuid4().hex[:8]}"
    build_a = WorkerDeploymentVersion(deployment, "A")
    build_b = WorkerDeploymentVersion(deployment, "B")
    async with _worker(temporal_client, task_queue, build_a):
        await _make_current(temporal_client, build_a)
        handle = await temporal_client.start_workflow(
            UpgradeWorkflow.run, id=f"upgrade-{task_queue}", task_queue=task_queue
        )
        await _until_steps(handle, 1)
    # Build A is gone; the workflow waits with no worker of its build.
    async with _worker(temporal_client, task_queue, build_b):
        await _make_current(temporal_client, build_b)
        await handle.signal(UpgradeWorkflow.go)
        assert await asyncio.wait_for(handle.result(), 30) == ["ingest@A", "index@B"]
    described = await handle.describe()
    info = described.raw_description.workflow_execution_info.versioning_info
    assert info.behavior == VersioningBehavior.AUTO_UPGRADE.value
    assert info.deployment_version.build_id == "B"


def test_the_build_id_is_package_version_plus_source_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("PV_WORKER_BUILD_ID", "PV_WORKER_DEPLOYMENT_NAME", "PV_WORKER_VERSIONING"):
        monkeypatch.delenv(name, raising=False)
    version = worker_version(VersioningSettings())
    assert version.deployment_name == "polyvision"
    assert version.build_id == default_build_id()
    assert version.build_id.endswith("+" + source_digest()[:12])
    monkeypatch.setenv("PV_WORKER_BUILD_ID", "git-1a2b3c")
    monkeypatch.setenv("PV_WORKER_DEPLOYMENT_NAME", "polyvision-eu")
    assert worker_version(VersioningSettings()) == WorkerDeploymentVersion(
        "polyvision-eu", "git-1a2b3c"
    )
    off = deployment_config(version, use_worker_versioning=False)
    assert off.default_versioning_behavior == VersioningBehavior.UNSPECIFIED
    on = deployment_config(version, use_worker_versioning=True)
    assert on.default_versioning_behavior == VersioningBehavior.AUTO_UPGRADE
