"""A pytest plugin that writes what each test proves and how it ended, for RELIABILITY.md.

Loaded with ``-p chaos.pytest_record``; the JSON file goes to ``PV_CHAOS_RECORD``. For each test:
its node id, the first paragraph of its docstring (what it proves), its outcome, its duration and
the figures it recorded with pytest's ``record_property``.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any

import pytest

_tests: dict[str, dict[str, Any]] = {}


def _summary(item: pytest.Item) -> str:
    function = getattr(item, "function", None)
    doc = inspect.getdoc(function) if function is not None else None
    if not doc:
        module = getattr(item, "module", None)
        doc = ""
        name = getattr(item, "originalname", item.name)
        return name.removeprefix("test_").replace("_", " ") if module is not None else doc
    return " ".join(doc.split("\n\n", 1)[0].split())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        _tests[item.nodeid] = {
            "nodeid": item.nodeid,
            "proves": _summary(item),
            "outcome": "not run",
            "duration_s": 0.0,
            "properties": {},
        }


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    record = _tests.setdefault(
        report.nodeid,
        {"nodeid": report.nodeid, "proves": "", "outcome": "not run", "duration_s": 0.0},
    )
    record["duration_s"] = round(record.get("duration_s", 0.0) + report.duration, 2)
    record.setdefault("properties", {}).update(dict(report.user_properties))
    if report.when == "call" or (report.when == "setup" and not report.passed):
        outcome: str = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        record["outcome"] = outcome
    elif report.when == "teardown" and report.failed:
        record["outcome"] = "error"


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("PV_CHAOS_RECORD")
    if not target:
        return
    Path(target).write_text(json.dumps(list(_tests.values()), indent=1, default=str) + "\n")
