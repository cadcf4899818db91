"""The demo's match, the way the product is used: an edge box uploads, a viewer watches.

Against a running stack, over HTTP only: a coach registers and creates an organization, makes a
provisioning code; ``polyvision-edge`` (run as its own process, as on a Jetson) provisions a key
and uploads the synthetic recording pair; the completed upload starts the match workflow, whose
progress comes from the API's processing endpoint; then the viewer's signed master playlist is
fetched and the per-team figures are read from the analytics endpoint.
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

DEMO_EMAIL = "coach@demo.polyvision.local"
DEMO_PASSWORD = "demo passphrase, development only"
DEMO_ORG_SLUG = "demo-fc"
PROCESSING_TIMEOUT_S = 1800.0
POLL_S = 1.0
BAR_WIDTH = 24
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


def format_processing(status: dict[str, Any]) -> str:
    """The processing endpoint's answer as a few lines: the stage and a bar per stage."""
    progress = status.get("progress") or {}
    lines = [f"stage: {progress.get('stage', status.get('status'))}"]
    for name, entry in (progress.get("stages") or {}).items():
        total = max(int(entry["total"]), 1)
        filled = round(BAR_WIDTH * min(int(entry["done"]), total) / total)
        took = f" {entry['seconds']:6.1f} s" if entry.get("seconds") is not None else ""
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        lines.append(f"  {name:<8} {bar} {entry['done']}/{entry['total']}{took}")
    return "\n".join(lines)


def _check(response: httpx.Response, *expected: int) -> Any:
    if response.status_code not in expected:
        raise StoryFailedError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response.json() if response.content else {}


def _edge(state_dir: Path, *args: str) -> None:
    """Run ``polyvision-edge`` as its own process; its progress goes to this terminal."""
    command = [sys.executable, "-m", "edge.cli", "--state-dir", str(state_dir), *args]
    completed = subprocess.run(command, check=False, timeout=600)
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


def run_match_story(
    api_url: str, data_dir: Path, recording: Path, say: Callable[[str], None]
) -> StoryResult:
    """Upload ``recording`` (left.mp4, right.mp4, rig.json) as an edge box; watch it processed.

    Raises:
        StoryFailedError: a step answered something other than what it should.
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

        deadline = time.monotonic() + PROCESSING_TIMEOUT_S
        status = api.call("GET", processing_path, 200)
        say(f"  match {match_id}: {status.get('ui_url')}")
        shown = ""
        while status["status"] not in FINISHED:
            if time.monotonic() > deadline:
                raise StoryFailedError(f"processing did not finish in {PROCESSING_TIMEOUT_S} s")
            text = format_processing(status)
            if text != shown:
                say(text + "\n")
                shown = text
            time.sleep(POLL_S)
            status = api.call("GET", processing_path, 200)
        say(format_processing(status))
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
