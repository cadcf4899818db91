"""Views of a processed match: its virtual camera rendered again, in another mode.

One path for the API and the CLI: `camera_settings` checks what was asked for, `view_name`
names the view after it, and `start_view` starts its workflow (`workflows.view`) on the match's
published revision through `MatchProcessing.start_view`.

A view's name is derived from its camera settings (``{mode}-{digest}``): asking again for the
same settings names the same view, whose workflow id (``match-{match}-view-{view}``) is then
either running (a conflict) or finished. A new run of a finished view has the same inputs, so
its planning, rendering and packaging answer from the manifests the first run wrote and
nothing published under its keys is rewritten (a run that failed half-way completes what is
missing); other settings are another view, in folders of its own. Only a change of the
stages' code versions between two runs of one view would render it again under the same keys.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from activities.vcam.contracts import CAMERA_MODES, CameraSettings
from polyvision.storage.metadata.models import Match
from processing.client import MatchProcessing, ProcessingError
from workflows.types import ViewInput

PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
"""A camera parameter's name (`activities.vcam.modes` documents the modes' parameters)."""
MAX_PARAMS = 32

_DIGEST_CHARS = 10


class InvalidCamera(ProcessingError):
    """The camera settings asked for cannot be planned (unknown mode, bad parameter)."""


class MatchNotReady(ProcessingError):
    """The match has no finished processing whose outputs a view could reuse."""


def camera_settings(
    mode: str, params: Mapping[str, float] | None = None, causal: bool = False
) -> CameraSettings:
    """Checked camera settings: a known mode, named parameters with finite numbers.

    Parameter names are checked for shape only; the planner refuses the names its mode does
    not know (the view's run then fails saying so).

    Raises:
        InvalidCamera: An unknown mode, a malformed name, too many parameters or a value that
            is not a finite number.
    """
    if mode not in CAMERA_MODES:
        raise InvalidCamera(f"unknown camera mode {mode!r}; one of {', '.join(CAMERA_MODES)}")
    checked: dict[str, float] = {}
    for name, value in (params or {}).items():
        if not PARAM_NAME.fullmatch(name):
            raise InvalidCamera(
                f"parameter name {name!r} is not lower-case letters, digits and underscores"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidCamera(f"parameter {name!r} must be a number, not {value!r}")
        if not math.isfinite(value):
            raise InvalidCamera(f"parameter {name!r} must be a finite number, not {value!r}")
        checked[name] = float(value)
    if len(checked) > MAX_PARAMS:
        raise InvalidCamera(f"at most {MAX_PARAMS} parameters")
    return CameraSettings(mode=mode, params=checked, causal=bool(causal))


def view_name(camera: CameraSettings) -> str:
    """The view's name: its mode and a digest of its settings (same settings, same name)."""
    canonical = json.dumps(
        {
            "mode": camera.mode,
            "params": {name: float(value) for name, value in sorted(camera.params.items())},
            "causal": camera.causal,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:_DIGEST_CHARS]
    return f"{camera.mode}-{digest}"


@dataclass(frozen=True)
class ViewStarted:
    """A view whose rendering started.

    Attributes:
        view: Its name.
        revision: The processed revision it reuses (and writes into).
        camera: Its camera settings.
        workflow_id: The workflow rendering it.
        run_id: The run.
    """

    view: str
    revision: int
    camera: CameraSettings
    workflow_id: str
    run_id: str


def published_revision(match: Match) -> int:
    """The revision a view of the match reuses: the published one (viewers watch it).

    Raises:
        MatchNotReady: No revision of the match has finished processing.
    """
    if match.published_revision is None:
        raise MatchNotReady(
            "This match has no finished processing yet; a view reuses a processed match's "
            "panorama and tracks."
        )
    return match.published_revision


async def start_view(
    processing: MatchProcessing, match: Match, camera: CameraSettings
) -> ViewStarted:
    """Start rendering the view ``camera`` names of the match's published revision.

    Raises:
        MatchNotReady: The match has no finished processing.
        ViewRunning: The same view is being rendered now.
        RPCError: Temporal could not start it.
    """
    revision = published_revision(match)
    view = view_name(camera)
    run_id = await processing.start_view(
        ViewInput(
            organization_id=str(match.organization_id),
            match_id=str(match.id),
            revision=revision,
            view=view,
            camera=camera,
        )
    )
    return ViewStarted(
        view=view,
        revision=revision,
        camera=camera,
        workflow_id=processing.view_workflow_id(str(match.id), view),
        run_id=run_id,
    )
