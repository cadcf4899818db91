"""`polyvision demo`: bring the embedded stack up, prove it works end to end, stop it cleanly.

Runs `polyvision up` exactly as an operator would (a child process on free ports with its own
data directory), waits for /readyz, runs the health workflow through every task queue the
development worker polls, opens the Temporal UI, films a synthetic match and lets an edge agent
upload it through the API (`programs.demo_story`: the upload starts the match workflow, a
viewer gets the signed stream and the team figures). With ``serve`` it then prints the web
viewer's URL for the match and keeps the stack serving until Ctrl-C. Last it sends SIGTERM and
checks that the stack exits with 0 and leaves no process behind.

Ctrl-C at any moment (starting, filming, uploading, processing) stops everything the demo
started the same way, says so in one line and exits with 130; while serving, Ctrl-C is the way
out: the stack stops and is checked as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from polyvision.settings import Settings
from polyvision.temporal.client import connect
from polyvision.temporal.queues import CPU_QUEUE, GPU_QUEUE, NVENC_QUEUE
from programs.demo_story import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    STALL_TIMEOUT_S,
    StoryResult,
    run_match_story,
)
from programs.stack_process import StackProcess
from synth.generate import SynthConfig, generate_match
from workflows.health import HealthCheckInput, HealthCheckWorkflow


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


INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as a shell reports it."""

WEB_DIST = Path(__file__).resolve().parents[1] / "web" / "dist"
"""The built web viewer the stack's API serves at /app/ (`scripts/build_web.sh`)."""


def process_synthetic_match(
    stack: StackProcess,
    match: SynthConfig,
    keep_data: bool,
    stall_timeout_s: float = STALL_TIMEOUT_S,
) -> StoryResult:
    """Film a synthetic match; an edge agent uploads it through the API; a viewer plays it."""
    synth_dir = stack.data_dir / "synthetic"
    _say(
        f"Filming a {match.seconds:.0f} s synthetic match at 2x{match.width}x{match.height} "
        f"into {synth_dir} ..."
    )
    generated = generate_match(match, synth_dir)
    _say(f"  filmed in {generated.seconds_taken:.1f} s")
    _say("An edge box uploads it; the completed upload starts the match workflow ...")
    story = run_match_story(
        stack.api_url, stack.data_dir, synth_dir, _say, stall_timeout_s=stall_timeout_s
    )
    _say(f"Uploaded and processed in {story.seconds:.1f} s")
    _say(f"  Temporal UI   {story.ui_url}")
    _say(f"  stream        {story.master_url}")
    _say("                (the coach's signed master playlist, valid 4 hours while the API runs)")
    for team in story.teams:
        _say(
            f"  team {team['team']}        {team['tracks']} tracks, "
            f"{team['distance_m'] / 1000:.2f} km, top speed {team['max_speed']:.1f} m/s"
        )
    if keep_data:
        _say(
            "  score it      PV_DATA_DIR=" + str(stack.data_dir) + " polyvision eval --truth "
            f"{synth_dir} --match {story.match_id} --org {story.organization_id}"
        )
    return story


def viewer_url(api_url: str, story: StoryResult | None) -> str:
    """The web viewer's page of the demo match (its start page without a match)."""
    if story is None:
        return f"{api_url}/app/"
    return f"{api_url}/app/#/orgs/{story.organization_id}/matches/{story.match_id}"


def serve_until_interrupted(stack: StackProcess, story: StoryResult | None) -> None:
    """Say where the viewer is and keep the stack serving until Ctrl-C (or until it stops).

    Raises:
        DemoFailedError: The stack stopped by itself while serving.
    """
    if (WEB_DIST / "index.html").is_file():
        _say(f"  web viewer    {viewer_url(stack.api_url, story)}")
        if story is not None:
            _say(f"                (sign in as {DEMO_EMAIL}, password: {DEMO_PASSWORD})")
    else:
        _say(f"  web viewer    not built: run scripts/build_web.sh, then {stack.api_url}/app/")
    _say("Serving until Ctrl-C ...")
    assert stack.process is not None
    try:
        while stack.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        # A second Ctrl-C must not cut the stop that follows short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _say("")
        return
    raise DemoFailedError(f"the stack stopped while serving (exit {stack.process.returncode})")


def run_demo(
    settings: Settings,
    *,
    keep_data: bool = False,
    match: SynthConfig | None = None,
    stall_timeout_s: float = STALL_TIMEOUT_S,
    serve: bool = False,
) -> int:
    """The whole demo; 0 when every step passed, 1 when one failed, 130 after Ctrl-C.

    Args:
        settings: Where the demo's data directory goes (under ``settings.data_dir``).
        keep_data: Keep the data directory (videos, HLS, stores) afterwards.
        match: The synthetic match to film and process; None only checks the stack.
        stall_timeout_s: Give up on processing that shows no progress this long.
        serve: Once every step passed, print the web viewer's URL and keep the stack serving
            until Ctrl-C (then stop it as without ``serve``, exiting 0).
    """
    stack = StackProcess(data_dir=settings.data_dir / "demo")
    try:
        return _run_demo(settings, stack, keep_data, match, stall_timeout_s, serve)
    except KeyboardInterrupt:
        return _interrupted(stack)


def _interrupted(stack: StackProcess) -> int:
    """After Ctrl-C: stop the stack (and anything of it left), say so in one line; 130."""
    # A second Ctrl-C must not cut the stop short and leave the stack running.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if stack.process is None:
        _say("interrupted: nothing was running")
        return INTERRUPTED
    with contextlib.suppress(subprocess.TimeoutExpired):  # stop() killed the tree then
        stack.stop(signal.SIGTERM)
    stack.kill_leftovers()
    _say("interrupted: stack stopped")
    return INTERRUPTED


def _run_demo(
    settings: Settings,
    stack: StackProcess,
    keep_data: bool,
    match: SynthConfig | None,
    stall_timeout_s: float,
    serve: bool = False,
) -> int:
    data_dir = stack.data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
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
        story = None
        if match is not None:
            story = process_synthetic_match(stack, match, keep_data, stall_timeout_s)
        if serve:
            serve_until_interrupted(stack, story)
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
