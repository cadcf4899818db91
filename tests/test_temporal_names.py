"""The names recorded in histories are written once, and the workers register exactly those."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

from polyvision.temporal import names
from polyvision.temporal.queues import QueueRole
from programs.worker.registry import WorkerDeps, activities_for, workflows_for
from programs.worker.stores import PipelineStores

HISTORIES = Path(__file__).parent / "workflows" / "histories"


def _stores(tmp_path: Path) -> PipelineStores:
    # Activities only keep references to their stores at registration; nothing is opened.
    return PipelineStores(
        objects=None,  # type: ignore[arg-type]
        analytics=None,  # type: ignore[arg-type]
        sessions=None,
        models_dir=tmp_path,
        work_dir=tmp_path,
    )


def test_the_workers_register_exactly_the_written_activity_names(tmp_path: Path) -> None:
    deps = WorkerDeps(identity="t", stores=_stores(tmp_path))
    registered = set()
    for role in QueueRole:
        for function in activities_for(role, deps):
            definition = activity._Definition.from_callable(function)
            assert definition is not None and definition.name is not None
            registered.add(definition.name)
    assert registered == set(names.ACTIVITIES)


def test_the_workers_register_exactly_the_written_workflow_names() -> None:
    registered = set()
    for role in QueueRole:
        for cls in workflows_for(role):
            definition = workflow._Definition.from_class(cls)
            assert definition is not None
            registered.add(definition.name)
    assert registered == set(names.WORKFLOWS)


def _types(node: Any, key: str) -> set[str]:
    """Every ``{key: {"name": ...}}`` name anywhere in a history document."""
    found: set[str] = set()
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key and isinstance(value, dict) and "name" in value:
                found.add(value["name"])
            else:
                found |= _types(value, key)
    elif isinstance(node, list):
        for value in node:
            found |= _types(value, key)
    return found


def test_the_recorded_histories_use_only_written_names() -> None:
    documents = [json.loads(path.read_text()) for path in sorted(HISTORIES.glob("*.json"))]
    activities = set().union(*(_types(d, "activityType") for d in documents))
    workflows = set().union(*(_types(d, "workflowType") for d in documents))
    assert {names.INGEST, names.STITCH_CHUNK, names.INDEX_MATCH} <= activities
    assert activities <= set(names.ACTIVITIES)
    assert {names.MATCH_WORKFLOW, names.HEALTH_CHECK_WORKFLOW} <= workflows
    assert workflows <= set(names.WORKFLOWS)
