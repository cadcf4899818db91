"""The demo's match, the way the product is used: an edge box uploads, a viewer watches.

Against a running stack, over HTTP only: a coach registers and creates an organization, makes a
provisioning code; ``polyvision-edge`` (run as its own process, as on a Jetson) provisions a key
and uploads the synthetic recording pair; the completed upload starts the match workflow, whose
progress comes from the API's processing endpoint; then the viewer's signed master playlist is
fetched and the per-team figures are read from the analytics endpoint.

Processing has no fixed deadline (a busy two-core machine takes long): the story waits while
the match makes progress and gives up only when no stage's chunk or frame count has moved for
``stall_timeout_s``, naming the stage it stalled in.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from programs.progress_text import StageLine, format_stages
from workflows.types import STAGES

DEMO_EMAIL = "coach@demo.polyvision.local"
DEMO_PASSWORD = "demo passphrase, development only"
DEMO_ORG_SLUG = "demo-fc"
STALL_TIMEOUT_S = 600.0
"""Give up when processing shows no progress (no chunk or frame done) this long."""
POLL_S = 1.0
FINISHED = {"completed", "failed", "cancelled", "terminated", "timed_out"}


class StoryFailedError(RuntimeError):
    """A step of the story did not do what it should."""


@dataclass(frozen=True)
class StoryResult:
    """What the story produced, for the demo to print."""

    organization_id: str
    match_id: str
    ui_url: str
    master_url: str
    teams: list[dict[str, Any]]
    seconds: float


def _stage_lines(progress: dict[str, Any]) -> list[StageLine]:
    return [
        StageLine(
            name=name,
            done=int(entry["done"]),
            total=int(entry["total"]),
            frames_done=int(entry.get("frames_done") or 0),
            frames_total=int(entry.get("frames_total") or 0),
            seconds=entry.get("seconds"),
            running=bool(entry.get("running")),
        )
        for name, entry in (progress.get("stages") or {}).items()
    ]


def format_processing(status: dict[str, Any]) -> str:
    """The processing endpoint's answer as a few lines: the stage running and a bar per stage."""
    progress = status.get("progress")
    if not progress:
        return f"stage: {status.get('status')}"
    return format_stages(
        str(progress.get("stage")),
        list(progress.get("running") or []),
        _stage_lines(progress),
        STAGES,
        [str(warning) for warning in status.get("warnings") or []],
    )


def progress_mark(status: dict[str, Any]) -> tuple[Any, ...]:
    """What changes while processing moves: the state and every stage's chunks and frames."""
    progress = status.get("progress") or {}
    return (
        status.get("status"),
        progress.get("stage"),
        tuple((line.name, line.moved) for line in _stage_lines(progress)),
    )


def stalled_stage(status: dict[str, Any]) -> str:
    """The stage a stalled run is in, for a person (all of them when several run)."""
    progress = status.get("progress") or {}
    running = list(progress.get("running") or [])
    if len(running) > 1:
        return " and ".join(running)
    return str(progress.get("stage") or status.get("status"))


def _check(response: httpx.Response, *expected: int) -> Any:
    if response.status_code not in expected:
        raise StoryFailedError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response.json() if response.content else {}


def _edge(state_dir: Path, *args: str) -> None:
    """Run ``polyvision-edge`` as its own process; its progress goes to this terminal.

    In a session of its own, so that Ctrl-C in the terminal reaches only the demo, which stops
    it (`subprocess.run` kills the child when interrupted) along with everything else.
    """
    command = [sys.executable, "-m", "edge.cli", "--state-dir", str(state_dir), *args]
    completed = subprocess.run(command, check=False, timeout=600, start_new_session=True)
    if completed.returncode != 0:
        raise StoryFailedError(f"polyvision-edge {args[0]} exited with {completed.returncode}")


class _Api:
    """The API as the coach uses it: logs in again when the access token has expired."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60.0)
        self._headers: dict[str, str] = {}

    def login(self) -> None:
        tokens = _check(
            self.http.post("/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}),
            200,
        )
        self._headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    def call(self, method: str, path: str, *expected: int, **kwargs: Any) -> Any:
        response = self.http.request(method, path, headers=self._headers, **kwargs)
        if response.status_code == 401:
            self.login()
            response = self.http.request(method, path, headers=self._headers, **kwargs)
        return _check(response, *expected)

    def poll(self, path: str) -> dict[str, Any] | None:
        """GET ``path``; None when the API cannot answer now (503, a timeout, a reset)."""
        try:
            response = self.http.get(path, headers=self._headers)
            if response.status_code == 401:
                self.login()
                response = self.http.get(path, headers=self._headers)
        except httpx.TransportError:
            return None
        if response.status_code == 503:
            return None
        answer: dict[str, Any] = _check(response, 200)
        return answer


def watch_processing(
    api: _Api,
    path: str,
    status: dict[str, Any],
    say: Callable[[str], None],
    stall_timeout_s: float,
) -> dict[str, Any]:
    """Show the processing progress until the run ends; its last status.

    Raises:
        StoryFailedError: no stage's chunk or frame count moved for ``stall_timeout_s``.
    """
    mark = progress_mark(status)
    moved_at = time.monotonic()
    shown = ""
    while status["status"] not in FINISHED:
        text = format_processing(status)
        if text != shown:
            say(text + "\n")
            shown = text
        if time.monotonic() - moved_at > stall_timeout_s:
            quiet = (
                f"{stall_timeout_s:.0f} s"
                if stall_timeout_s < 120
                else f"{stall_timeout_s / 60:.0f} min"
            )
            raise StoryFailedError(
                f"processing stalled in {stalled_stage(status)}: no chunk or frame done for "
                f"{quiet} (--stall-minutes)"
            )
        time.sleep(POLL_S)
        answer = api.poll(path)
        if answer is None:  # the API or Temporal is busy: ask again
            continue
        status = answer
        if (new_mark := progress_mark(status)) != mark:
            mark, moved_at = new_mark, time.monotonic()
    say(format_processing(status))
    return status


def run_match_story(
    api_url: str,
    data_dir: Path,
    recording: Path,
    say: Callable[[str], None],
    *,
    stall_timeout_s: float = STALL_TIMEOUT_S,
) -> StoryResult:
    """Upload ``recording`` (left.mp4, right.mp4, rig.json) as an edge box; watch it processed.

    Raises:
        StoryFailedError: a step answered something other than what it should, or processing
            showed no progress for ``stall_timeout_s``.
    """
    started = time.monotonic()
    api = _Api(api_url)
    try:
        _check(
            api.http.post(
                "/auth/register",
                json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD, "full_name": "Demo Coach"},
            ),
            201,
            409,  # a kept data directory already has the account
        )
        api.login()
        existing = [org for org in api.call("GET", "/orgs", 200) if org["slug"] == DEMO_ORG_SLUG]
        org = (
            existing[0]
            if existing
            else api.call("POST", "/orgs", 201, json={"name": "Demo FC", "slug": DEMO_ORG_SLUG})
        )
        org_id = str(org["id"])
        say(f"  coach {DEMO_EMAIL}, organization {org['name']} ({org_id})")
        code = api.call(
            "POST", f"/orgs/{org_id}/devices/provisioning-codes", 201, json={"ttl_s": 600}
        )["code"]

        edge_dir = data_dir / "edge"
        say("  polyvision-edge provision ...")
        _edge(edge_dir, "provision", "--api", api_url, f"--code={code}", "--name", "Demo pitch")
        say("  polyvision-edge upload ...")
        _edge(
            edge_dir,
            "upload",
            str(recording / "left.mp4"),
            str(recording / "right.mp4"),
            "--rig",
            str(recording / "rig.json"),
            "--title",
            "Demo FC vs Synthetic XI",
        )
        listed = api.call("GET", f"/orgs/{org_id}/matches", 200, params={"q": "synthetic"})
        if not listed["items"]:
            raise StoryFailedError("the uploaded match is not in the catalog")
        match_id = str(listed["items"][0]["id"])
        processing_path = f"/orgs/{org_id}/matches/{match_id}/processing"

        status = api.call("GET", processing_path, 200)
        say(f"  match {match_id}: {status.get('ui_url')}")
        status = watch_processing(api, processing_path, status, say, stall_timeout_s)
        if status["status"] != "completed":
            raise StoryFailedError(
                f"processing ended {status['status']}: {status.get('failure') or 'no reason given'}"
            )

        playback = api.call("GET", f"/orgs/{org_id}/matches/{match_id}/playback", 200)
        master = api.http.get(playback["master_url"])
        if master.status_code != 200 or not master.text.startswith("#EXTM3U"):
            raise StoryFailedError(f"the signed master playlist answered {master.status_code}")
        teams = api.call("GET", f"/orgs/{org_id}/matches/{match_id}/analytics/teams", 200)
        return StoryResult(
            organization_id=org_id,
            match_id=match_id,
            ui_url=str(status.get("ui_url")),
            master_url=str(playback["master_url"]),
            teams=list(teams.get("teams", [])),
            seconds=time.monotonic() - started,
        )
    finally:
        api.http.close()
