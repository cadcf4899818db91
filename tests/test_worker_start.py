"""What a worker finds out before it starts: who holds the embedded analytics store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from programs.worker.run import analytics_held_message
from programs.worker.stores import StoreHolder, embedded_analytics_holder

HOLD = """
import sys, time
from polyvision.storage.analytics import open_analytics_store
store = open_analytics_store(sys.argv[1])
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    url = f"chdb://{tmp_path / 'analytics'}"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, url], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_store_held_by_another_process_names_it(
    holder: tuple[str, subprocess.Popen[str]],
) -> None:
    url, process = holder
    found = embedded_analytics_holder(url)
    assert found is not None and found.pid == process.pid
    assert found.command == Path(sys.executable).name  # not a polyvision command: its program
    message = analytics_held_message(url, found)
    assert f"({Path(sys.executable).name}, pid {process.pid})" in message
    assert "PV_ANALYTICS_URL=clickhouse://" in message and "PV_DATA_DIR" in message


def test_a_store_left_by_a_killed_holder_is_free(
    holder: tuple[str, subprocess.Popen[str]],
) -> None:
    url, process = holder
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 5
    while embedded_analytics_holder(url) is not None:  # the lock goes with the process
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_nothing_to_hold(tmp_path: Path) -> None:
    assert embedded_analytics_holder(f"chdb://{tmp_path / 'never-opened'}") is None
    assert embedded_analytics_holder("chdb://:memory:") is None
    assert embedded_analytics_holder("clickhouse://user:pass@host:8123/db") is None


def test_holder_descriptions() -> None:
    assert str(StoreHolder(pid=12, command="polyvision up")) == "polyvision up, pid 12"
    assert str(StoreHolder(pid=0, command="")) == "pid unknown"
