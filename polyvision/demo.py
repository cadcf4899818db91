"""`polyvision demo`: bring the embedded stack up, prove it works end to end, stop it cleanly.

Runs `polyvision up` exactly as an operator would (a child process on free ports with its own
data directory), waits for /readyz, runs the health workflow through every task queue the
development worker polls, opens the Temporal UI, then sends SIGTERM and checks that the stack
exits with 0 and leaves no process behind.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
import time
import uuid
from dataclasses import dataclass

import httpx

from polyvision.process import ProcessRequest, process_match
from polyvision.settings import Settings
from polyvision.stack_process import StackProcess
from polyvision.synth.generate import SynthConfig, generate_match
from polyvision.temporal.client import connect
from polyvision.worker.queues import CPU_QUEUE, GPU_QUEUE, NVENC_QUEUE
from workflows.health import HealthCheckInput, HealthCheckWorkflow
from workflows.types import MatchOutput


class DemoFailedError(RuntimeError):
    """A step of the demo did not do what it should."""


@dataclass(frozen=True)
class HealthReport:
    workflow_id: str
    run_id: str
    answers: dict[str, str]


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def run_health_workflow(address: str, namespace: str) -> HealthReport:
    """Ping the cpu, gpu and nvenc queues through the stack's worker."""
    client = await connect(address, namespace)
    workflow_id = f"health-{uuid.uuid4().hex[:12]}"
    handle = await client.start_workflow(
        HealthCheckWorkflow.run,
        HealthCheckInput(queues=[CPU_QUEUE, GPU_QUEUE, NVENC_QUEUE]),
        id=workflow_id,
        task_queue=CPU_QUEUE,
    )
    output = await handle.result()
    answers = {answer.queue: answer.identity for answer in output.answers}
    missing = {CPU_QUEUE, GPU_QUEUE, NVENC_QUEUE} - set(answers)
    if missing:
        raise DemoFailedError(f"queues without an answer: {sorted(missing)}")
    return HealthReport(workflow_id, handle.result_run_id or "", answers)


def process_synthetic_match(stack: StackProcess, settings: Settings, match: SynthConfig) -> None:
    """Film a synthetic match and process it through the running stack."""
    synth_dir = stack.data_dir / "synthetic"
    _say(
        f"Filming a {match.seconds:.0f} s synthetic match at 2x{match.width}x{match.height} "
        f"into {synth_dir} ..."
    )
    generated = generate_match(match, synth_dir)
    _say(f"  filmed in {generated.seconds_taken:.1f} s")
    stack_settings = Settings(
        data_dir=stack.data_dir,
        temporal_address=stack.temporal_address,
        temporal_ui_url=stack.ui_url,
        temporal_namespace=settings.temporal_namespace,
        api_port=stack.api_port,
    )
    request = ProcessRequest(
        left=synth_dir / "left.mp4",
        right=synth_dir / "right.mp4",
        rig=synth_dir / "rig.json",
        organization_id="demo",
        match_id="demo-match",
    )

    async def go() -> MatchOutput:
        client = await connect(stack.temporal_address, settings.temporal_namespace)
        return await process_match(client, stack_settings, request)

    started = time.monotonic()
    output = asyncio.run(go())
    objects_dir = stack.data_dir / "objects"
    summary = json.loads((objects_dir / output.summary_key).read_text())
    _say(f"Processed in {time.monotonic() - started:.1f} s")
    _say(f"  HLS playlist  {objects_dir / output.hls_master_key}")
    _say(f"  summary       {objects_dir / output.summary_key}")
    for key in ("frames", "chunks", "detections_persons", "tracks", "total_distance_m"):
        _say(f"    {key:<20} {summary.get(key)}")


def run_demo(
    settings: Settings, *, keep_data: bool = False, match: SynthConfig | None = None
) -> int:
    """The whole demo; 0 when every step passed.

    Args:
        settings: Where the demo's data directory goes (under ``settings.data_dir``).
        keep_data: Keep the data directory (videos, HLS, stores) afterwards.
        match: The synthetic match to film and process; None only checks the stack.
    """
    data_dir = settings.data_dir / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    stack = StackProcess(data_dir=data_dir)
    started = time.monotonic()
    _say(f"Starting the embedded stack (data in {data_dir}) ...")
    stack.start()
    try:
        readiness = stack.wait_ready(timeout_s=180)
        _say(f"Ready in {time.monotonic() - started:.1f} s: {readiness['checks']}")
        _say(f"  API          {stack.api_url}  (/docs, /metrics)")
        _say(f"  Temporal UI  {stack.ui_url}")
        report = asyncio.run(
            run_health_workflow(stack.temporal_address, settings.temporal_namespace)
        )
        for queue, identity in report.answers.items():
            _say(f"  {queue:<18} answered by {identity}")
        _say(
            f"  health run   {stack.ui_url}/namespaces/{settings.temporal_namespace}"
            f"/workflows/{report.workflow_id}/{report.run_id}/history"
        )
        ui = httpx.get(stack.ui_url, timeout=10)
        if ui.status_code != 200:
            raise DemoFailedError(f"Temporal UI answered {ui.status_code}")
        if match is not None:
            process_synthetic_match(stack, settings, match)
    except Exception as exc:  # every failure ends the same way: report it and stop the stack
        _say(f"Demo failed: {exc}")
        stack.stop(signal.SIGTERM)
        stack.kill_leftovers()
        return 1
    _say("Stopping with SIGTERM ...")
    code = stack.stop(signal.SIGTERM)
    leftovers = stack.leftovers()
    output = stack.output()
    problems = []
    if code != 0:
        problems.append(f"exit code {code}")
    if leftovers:
        problems.append(f"processes left running: {leftovers}")
        stack.kill_leftovers()
    for marker in ("Traceback", "panic", "Aborted"):
        if marker in output:
            problems.append(f"'{marker}' in the stack's output")
    if problems:
        _say("Demo failed at shutdown: " + "; ".join(problems))
        _say(output[-4000:])
        return 1
    _say(
        f"Stopped cleanly (exit 0, nothing left running) after {time.monotonic() - started:.1f} s."
    )
    if not keep_data:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0
