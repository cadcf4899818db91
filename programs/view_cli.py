"""`polyvision view`: render a processed match's virtual camera again, in another mode.

Only the camera is planned, rendered and packaged again (`workflows.view`); the match's
panorama, detections and tracks are reused. The view starts the way the API's
``POST /orgs/{org}/matches/{match}/views`` starts one (`processing.views`): on the match's
published revision, named after its settings, on the running stack (``--stack DIR``, by default
``PV_DATA_DIR``; without a stack there, this environment's ``PV_`` settings), as
`polyvision process` finds it. ``--wait`` follows the rendering to its end.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from activities.vcam.contracts import CAMERA_MODES, CameraSettings
from polyvision.settings import Settings

if TYPE_CHECKING:
    from processing import MatchProcessing
    from workflows.types import ViewOutput

POLL_S = 1.0


def camera_param(text: str) -> tuple[str, float]:
    """An argparse type: ``NAME=VALUE``, a parameter name and a finite number."""
    name, equals, value = text.partition("=")
    name = name.strip()
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE (e.g. pan_speed=0.8)")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(
            f"{text!r}: the value of {name!r} must be a finite number, not {value.strip()!r}"
        )
    return name, number


def add_view_parser(commands: Any) -> None:
    """Add ``view`` to the `polyvision` subcommands (``commands``: argparse's subparsers)."""
    view = commands.add_parser(
        "view",
        help="render a processed match's virtual camera again, in another mode",
        description=(
            "Plan, render and package a processed match's virtual camera again with another "
            "mode or parameters; stitching, detection and tracking are reused, not run again. "
            "The view is named after its settings and played with the API's "
            "`/orgs/ORG/matches/MATCH/playback?view=NAME`."
        ),
    )
    view.add_argument("match_id", type=uuid.UUID, help="the processed match (its id, a UUID)")
    view.add_argument("--mode", required=True, choices=CAMERA_MODES, help="camera mode")
    view.add_argument(
        "--param",
        dest="params",
        action="append",
        type=camera_param,
        default=[],
        metavar="NAME=VALUE",
        help="override one of the mode's parameters (repeatable), e.g. pan_speed=0.8",
    )
    view.add_argument(
        "--causal", action="store_true", help="plan without looking ahead, as a live camera"
    )
    view.add_argument("--wait", action="store_true", help="follow the rendering to its end")
    view.add_argument(
        "--stack",
        default=None,
        metavar="DIR",
        help="data directory of the running `polyvision up` (default: PV_DATA_DIR; without a "
        "stack running there, this environment's PV_ settings)",
    )
    view.set_defaults(handler=run_view)


def _error(text: str) -> None:
    sys.stderr.write(f"polyvision view: {text}\n")
    sys.stderr.flush()


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def run_view(settings: Settings, args: argparse.Namespace) -> int:
    """The command: 0 when the view started (or, with ``--wait``, finished), 1 when it could
    not start or failed, 2 for a bad request (bad settings, unknown match, no stack)."""
    from processing.views import InvalidCamera, camera_settings
    from programs.process import NoStackError, stack_settings

    params: dict[str, float] = {}
    for name, value in args.params:
        if name in params:
            _error(f"--param {name} is given twice")
            return 2
        params[name] = value
    try:
        camera = camera_settings(args.mode, params, args.causal)
    except InvalidCamera as exc:
        _error(str(exc))
        return 2
    try:
        settings, stack = stack_settings(settings, Path(args.stack) if args.stack else None)
    except NoStackError as exc:
        _error(str(exc))
        return 2
    if stack is not None:
        _say(f"stack: {stack.api_url} (data in {stack.data_dir}, pid {stack.pid})")
    return asyncio.run(_start(settings, args.match_id, camera, wait=args.wait))


async def _start(
    settings: Settings, match_id: uuid.UUID, camera: CameraSettings, *, wait: bool
) -> int:
    from sqlalchemy.exc import SQLAlchemyError
    from temporalio.client import WorkflowFailureError
    from temporalio.service import RPCError

    from polyvision.storage.metadata import create_engine, session_maker
    from polyvision.storage.metadata.models import Match
    from polyvision.temporal.client import connect
    from processing import MatchProcessing, ProcessingError
    from processing.views import start_view

    address = settings.temporal_address
    try:
        client = await connect(address, settings.temporal_namespace)
    except RuntimeError as exc:  # the SDK reports a failed connection as RuntimeError
        _error(f"cannot reach Temporal at {address}: {exc}")
        return 1
    processing = MatchProcessing(client, settings)
    engine = create_engine(settings.database_url)
    try:
        async with session_maker(engine)() as session:
            match = await session.get(Match, match_id)
        if match is None:
            _error(f"no match {match_id} in the catalog")
            return 2
        started = await start_view(processing, match, camera)
        _say(
            f"view {started.view} of match {match_id} (revision {started.revision}): "
            f"{processing.ui_link(started.workflow_id, started.run_id)}"
        )
        if not wait:
            return 0
        output = await _follow(processing, started.workflow_id, started.run_id)
    except ProcessingError as exc:
        _error(str(exc))
        return 1
    except SQLAlchemyError as exc:
        _error(
            f"the metadata store is not ready ({exc}); run `polyvision db upgrade` or start "
            "the stack"
        )
        return 1
    except RPCError as exc:
        _error(f"Temporal did not answer: {exc.message}")
        return 1
    except WorkflowFailureError as exc:
        cause = str(exc.cause) if exc.cause is not None else str(exc)
        _error(f"the view failed: {cause}")
        return 1
    finally:
        await engine.dispose()
    _say(
        f"done: {output.frames} frames in {output.chunks} chunks\n"
        f"HLS master playlist: {output.hls_master_key}\n"
        f"playback: {settings.api_public_url.rstrip('/')}/orgs/{match.organization_id}"
        f"/matches/{match_id}/playback?view={output.view}"
    )
    return 0


async def _follow(processing: MatchProcessing, workflow_id: str, run_id: str) -> ViewOutput:
    """Wait for the view's result, printing its progress when it changes."""
    from programs.process import format_progress

    result = asyncio.ensure_future(processing.view_result(workflow_id, run_id))
    shown = ""
    try:
        while not result.done():
            await asyncio.wait({result}, timeout=POLL_S)
            if result.done():
                break
            progress = await processing.progress(workflow_id, run_id)
            if progress is None:  # no worker answered yet; ask again next time
                continue
            text = format_progress(progress)
            if text != shown:
                _say(text + "\n")
                shown = text
        return await result
    finally:
        result.cancel()
