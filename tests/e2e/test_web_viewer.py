"""The web viewer in a real browser: headless Chromium (Debian's) driven by Playwright.

One synthetic match is uploaded by an edge agent at the start of the module and processed by
a real worker, as in `test_edge_to_viewer`; while it runs, an operator watches its progress
move in the page. Once it is processed, a member signs in, plays it (the time advances),
changes the rendition, scrubs with thumbnails, pans the panorama, and sees the minimap follow
playback, the heatmaps and the figures. A viewer of another organization finds no trace of
the match; an expired session returns to sign-in; axe-core finds no serious or critical
accessibility violation. Screenshots at phone and desktop sizes go to
``tests/e2e/screenshots/`` for people to look at.

Needs Chromium (``scripts/ensure_chromium.sh``, run by ``make install``) and the built viewer
(``scripts/build_web.sh``, run by ``make install``); a missing one fails the module with the
step to run, it is never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from temporalio.client import Client, WorkflowHandle

from api.app import WEB_DIST
from polyvision.settings import Settings
from polyvision.storage.metadata.models import Membership, Role, User, utcnow
from polyvision.storage.upgrade import upgrade_stores
from polyvision.temporal.queues import QueueRole, queue_names
from programs.worker.plan import QueuePlan
from programs.worker.registry import WorkerDeps
from programs.worker.stores import open_pipeline_stores
from synth.generate import SynthConfig, generate_match
from tests.api.factories import Factory
from tests.fixtures.live_api import REPO, LiveApi, live_settings, provision, run_edge, serving_api
from tests.fixtures.pipeline import requires_model
from tests.fixtures.temporal import TemporalTestServer, running_worker
from workflows.match import workflow_id_for
from workflows.types import MatchOutput

if "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD" not in os.environ:
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"  # Chromium is Debian's, never fetched

try:
    from playwright.async_api import Browser, BrowserContext, Page, async_playwright
except ImportError:  # pragma: no cover - reported by the fixture below
    async_playwright = None  # type: ignore[assignment]

pytestmark = [requires_model, pytest.mark.timeout(600)]

CHROMIUM = Path(os.environ.get("PV_CHROMIUM", "/usr/bin/chromium"))
AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(__file__).parent / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
PASSWORD = "a long browser-test passphrase"
TITLE = "Riverside vs Hillcrest"
SECONDS = 4.0


@dataclass(frozen=True)
class Account:
    email: str
    password: str = PASSWORD


@dataclass
class Site:
    """The running stack, the browser and the match the module's tests share."""

    url: str
    settings: Settings
    app: FastAPI
    browser: Browser
    org_id: str
    admin: Account
    outsider: Account
    match_id: str
    handle: WorkflowHandle[Any, MatchOutput]
    processed: bool = False
    problems: list[str] = field(default_factory=list)

    def match_url(self) -> str:
        return f"{self.url}/app/#/orgs/{self.org_id}/matches/{self.match_id}"

    async def wait_processed(self) -> None:
        if not self.processed:
            result = await asyncio.wait_for(self.handle.result(), 540)
            assert result.frames == int(SECONDS * 25)
            self.processed = True


def _missing_prerequisites() -> list[str]:
    missing = []
    if async_playwright is None:
        missing.append(
            "the `playwright` Python package is not installed: `make install` (the dev extra)"
        )
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(
            f"Chromium is missing at {CHROMIUM}: `make install` runs scripts/ensure_chromium.sh"
        )
    if not (WEB_DIST / "index.html").is_file():
        missing.append(
            f"the web viewer is not built ({WEB_DIST}): `make install` runs scripts/build_web.sh"
        )
    if not AXE.is_file():
        missing.append(f"axe-core is missing ({AXE}): `make install` runs scripts/build_web.sh")
    return missing


async def _account(app: FastAPI, org_id: uuid.UUID, role: Role) -> Account:
    """A verified account with a password, member of ``org_id`` with ``role``."""
    account = Account(f"{role.value}-{uuid.uuid4().hex[:8]}@example.com")
    password_hash = await app.state.auth.passwords.hash(account.password)
    async with app.state.sessions() as session:
        user = User(email=account.email, password_hash=password_hash, email_verified_at=utcnow())
        session.add(user)
        await session.flush()
        session.add(Membership(user_id=user.id, organization_id=org_id, role=role))
        await session.commit()
    return account


@pytest_asyncio.fixture(scope="module")
async def site(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalTestServer,
    temporal_client: Client,
) -> AsyncIterator[Site]:
    """The stack serving the viewer, Chromium, and a synthetic match an edge box uploaded
    (processing starts; `Site.wait_processed` waits for its end)."""
    missing = _missing_prerequisites()
    if missing:
        pytest.fail("The web viewer's browser tests cannot run: " + "; ".join(missing))
    assert async_playwright is not None
    tmp = tmp_path_factory.mktemp("web-viewer")
    suffix = f"-web-{uuid.uuid4().hex[:8]}"
    # Every test signs in through the page: more logins a minute than a person makes.
    settings = live_settings(tmp / "pv", temporal_server, suffix).model_copy(
        update={"rate_limit_auth_per_minute": 1000}
    )
    await asyncio.to_thread(upgrade_stores, settings)
    recording = tmp / "recording"
    await asyncio.to_thread(
        generate_match, SynthConfig(seconds=SECONDS, width=960, height=540, seed=21), recording
    )
    names = queue_names(suffix)
    plans = [QueuePlan(role, names[role], 2) for role in (QueueRole.cpu, QueueRole.gpu)]
    async with contextlib.AsyncExitStack() as stack:
        app, log = await stack.enter_async_context(serving_api(settings))
        stores = await stack.enter_async_context(open_pipeline_stores(settings))
        deps = WorkerDeps(identity="web-viewer-worker", stores=stores)
        await stack.enter_async_context(running_worker(temporal_client, plans, deps=deps))
        playwright = await stack.enter_async_context(async_playwright())
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        stack.push_async_callback(browser.close)

        factory = Factory(app)
        home = await factory.org(roles=(Role.admin,))
        elsewhere = await factory.org(roles=(Role.viewer,))
        admin = await _account(app, home.id, Role.admin)
        outsider = await _account(app, elsewhere.id, Role.viewer)
        live = LiveApi(settings.api_public_url, app, settings, log, factory, temporal_client)
        state_dir = tmp / "edge"
        await provision(live, state_dir, home, name="pitch-1")
        uploaded = await run_edge(
            state_dir,
            "upload",
            str(recording / "left.mp4"),
            str(recording / "right.mp4"),
            "--rig",
            str(recording / "rig.json"),
            "--title",
            TITLE,
        )
        assert uploaded.code == 0, uploaded.stderr
        async with httpx.AsyncClient(base_url=settings.api_public_url) as http:
            listed = await http.get(
                f"/orgs/{home.id}/matches", headers=home.member(Role.admin).headers
            )
        (match,) = listed.json()["items"]
        handle = temporal_client.get_workflow_handle(
            workflow_id_for(match["id"]), result_type=MatchOutput
        )
        yield Site(
            url=settings.api_public_url,
            settings=settings,
            app=app,
            browser=browser,
            org_id=str(home.id),
            admin=admin,
            outsider=outsider,
            match_id=str(match["id"]),
            handle=handle,
        )
        # The run must not outlive the worker the module stops: a module cut short (a failure,
        # -k) cancels it rather than waiting for it.
        with contextlib.suppress(Exception):
            if (await handle.describe()).close_time is None:
                await handle.cancel()
            await asyncio.wait_for(handle.result(), 60)


@contextlib.asynccontextmanager
async def browsing(site: Site, viewport: dict[str, int] = DESKTOP) -> AsyncIterator[Page]:
    """A fresh browser context and page; fails the test on a script error or a blocked load
    (a Content-Security-Policy violation, for one)."""
    phone = viewport == PHONE
    context: BrowserContext = await site.browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        device_scale_factor=2 if phone else 1,
        is_mobile=phone,
        has_touch=phone,
    )
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    try:
        yield page
    finally:
        await context.close()
    assert not problems, problems


async def sign_in(page: Page, site: Site, account: Account, at: str = "") -> None:
    await page.goto(f"{site.url}/app/{at}")
    await page.get_by_label("Email").fill(account.email)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("button", name="Sign out").wait_for()


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout_s: float, what: str, poll_s: float = 0.25
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        await asyncio.sleep(poll_s)


async def open_processed_match(page: Page, site: Site) -> None:
    """Sign in as the admin on the match page and wait until its player and figures load."""
    await site.wait_processed()
    await sign_in(page, site, site.admin, at=f"#/orgs/{site.org_id}/matches/{site.match_id}")
    await page.get_by_role("heading", name=TITLE).wait_for()
    await page.locator(".player[data-engine]").wait_for(timeout=20_000)


# --- tests, in the order they run: the first ones while the match is processing -----------


async def test_sign_in_search_filter_and_sign_out(site: Site) -> None:
    async with browsing(site) as page:
        await page.goto(f"{site.url}/")  # the API's root leads to the viewer
        await page.get_by_label("Password").fill("not the password")
        await page.get_by_label("Email").fill(site.admin.email)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("alert").get_by_text("Wrong email or password").wait_for()

        await sign_in(page, site, site.admin)
        await page.get_by_role("heading", name="Matches").wait_for()
        card = page.locator(".match-card", has_text=TITLE)
        await card.wait_for()
        assert await card.locator(".badge").get_attribute("data-status") in {
            "processing",
            "uploading",
            "ready",
        }
        search = page.get_by_label("Search")
        await search.fill("nothing-like-this")
        await page.locator("#match-summary", has_text="No matches found.").wait_for()
        await search.fill("hillc")  # a word of the title, by its start
        await card.wait_for()
        await page.get_by_label("Status").select_option("failed")
        await page.locator("#match-summary", has_text="No matches found.").wait_for()
        await page.get_by_label("Status").select_option("")
        await card.wait_for()

        await page.get_by_role("button", name="Sign out").click()
        await page.get_by_role("heading", name="Sign in to Polyvision").wait_for()
        assert await page.evaluate("localStorage.getItem('polyvision.session')") is None


async def test_progress_updates_while_the_match_processes(site: Site) -> None:
    async with browsing(site) as page:
        await sign_in(page, site, site.admin, at=f"#/orgs/{site.org_id}/matches/{site.match_id}")
        panel = page.locator("section.processing")
        await panel.wait_for()
        link = panel.get_by_role("link", name="Open the run in the Temporal UI")
        await link.wait_for()
        assert (await link.get_attribute("href") or "").startswith(site.settings.temporal_ui_url)
        await panel.get_by_role("button", name="Reprocess").wait_for()

        seen: list[tuple[str, ...]] = []

        async def moved() -> bool:
            state = await panel.get_attribute("data-state") or ""
            stages = await panel.locator("li[data-stage]").evaluate_all(
                "items => items.map(i => `${i.dataset.stage}:${i.dataset.done}/${i.dataset.total}`)"
            )
            snapshot = (state, *stages)
            if not seen or seen[-1] != snapshot:
                seen.append(snapshot)
            # Two different answers from a running workflow, polled by the page itself.
            running = [s for s in seen if s[0] == "running" and len(s) > 1]
            return len(running) >= 2

        await eventually(moved, 60, "the page showed the run's progress moving")
        assert await panel.get_by_role("button", name="Cancel processing").is_visible()
        # The progress bars are labelled with their stage and count.
        bar = panel.locator("li[data-stage] progress").first
        assert await bar.get_attribute("aria-valuetext")


async def test_the_match_plays_with_renditions_and_thumbnails(site: Site) -> None:
    async with browsing(site) as page:
        await open_processed_match(page, site)
        video = page.locator(".player video")
        await page.get_by_role("button", name="Play").click()
        await page.wait_for_function(
            "() => document.querySelector('.player video').currentTime > 0.5", timeout=20_000
        )
        assert await page.get_by_role("button", name="Pause").is_visible()

        quality = page.get_by_label("Quality")
        labels = await quality.locator("option").all_inner_texts()
        assert labels == ["Auto", "1080p", "720p", "480p"], labels
        await quality.select_option(label="480p")
        await video.evaluate("v => { v.currentTime = 0; return v.play(); }")
        await page.wait_for_function(
            "() => document.querySelector('.player').dataset.level === '480p'"
            " && document.querySelector('.player video').videoHeight === 480",
            timeout=20_000,
        )
        await quality.select_option(label="1080p")
        await video.evaluate("v => { v.currentTime = 0; return v.play(); }")
        await page.wait_for_function(
            "() => document.querySelector('.player video').videoHeight === 1080", timeout=20_000
        )

        # Scrubbing: hovering the bar shows the sprite tile of that time.
        seek = page.get_by_role("slider", name="Seek")
        box = await seek.bounding_box()
        assert box is not None
        async with page.expect_response(lambda r: "/thumbnails/" in r.url) as sprite:
            await page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
        assert (await sprite.value).status == 200
        preview = page.locator(".preview")
        await preview.wait_for()
        assert "thumbnails" in await preview.locator(".preview-image").evaluate(
            "e => e.style.backgroundImage"
        )
        # The keyboard moves the bar too, and it tells the time in words.
        await seek.focus()
        await page.keyboard.press("Home")
        assert "0 s of" in (await seek.get_attribute("aria-valuetext") or "")


async def test_the_panorama_pans_and_zooms(site: Site) -> None:
    async with browsing(site) as page:
        await open_processed_match(page, site)
        await page.get_by_role("button", name="Panorama").click()
        frame = page.locator(".frame")
        await page.wait_for_function(
            "() => document.querySelector('.player').dataset.source === 'panorama'"
            " && document.querySelector('.player').dataset.engine"
            " && document.querySelector('.player video').videoWidth > 0",
            timeout=20_000,
        )
        width, height = await page.locator(".player video").evaluate(
            "v => [v.videoWidth, v.videoHeight]"
        )
        assert width > 2 * height * 16 / 9 / 2  # a panorama, wider than the camera's 16:9

        async def transform() -> tuple[float, float, float]:
            data = await frame.evaluate("f => [f.dataset.scale, f.dataset.x, f.dataset.y]")
            return float(data[0]), float(data[1]), float(data[2])

        box = await frame.bounding_box()
        assert box is not None
        centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        await page.mouse.move(*centre)
        before = await transform()
        await page.mouse.wheel(0, -400)  # zoom in around the pointer
        await eventually(
            lambda: _greater(transform, 0, before[0]), 5, "the wheel zoomed the panorama in"
        )
        zoomed = await transform()
        await page.mouse.down()
        await page.mouse.move(centre[0] + 150, centre[1] + 60, steps=6)
        await page.mouse.up()
        panned = await transform()
        assert panned[1] > zoomed[1], (zoomed, panned)  # dragged right: the picture follows
        assert await page.locator(".player video").evaluate("v => v.style.transform") != ""
        # The keyboard pans too, once the panorama has focus.
        await frame.focus()
        await page.keyboard.press("ArrowLeft")
        assert (await transform())[1] != panned[1] or panned[1] == 0


async def _greater(read: Callable[[], Awaitable[tuple[float, ...]]], i: int, than: float) -> bool:
    return (await read())[i] > than


async def test_heatmaps_figures_and_the_minimap_follow_the_match(site: Site) -> None:
    async with browsing(site) as page:
        await open_processed_match(page, site)
        heat = page.locator("#heatmap-team-1[data-total], #heatmap-team-0[data-total]")
        await heat.first.wait_for(timeout=20_000)
        await page.locator("#heatmap-team-0[data-total]").wait_for()
        totals = [int(await h.get_attribute("data-total") or 0) for h in await heat.all()]
        assert sum(totals) > 0, totals
        # The two teams' totals and the per-player table.
        await page.locator(
            "table.data", has=page.locator("th", has_text="Sprints")
        ).first.wait_for()
        players = page.locator("tr[data-track]")
        assert await players.count() > 0
        await players.first.get_by_role("button").click()
        player_heat = page.locator("#heatmap-player[data-total]")
        await player_heat.wait_for(timeout=20_000)
        assert int(await player_heat.get_attribute("data-total") or 0) > 0
        await page.get_by_role("heading", name="Possession").wait_for()

        minimap = page.locator(".minimap-canvas")

        async def minimap_at(t: float) -> tuple[str, int]:
            await page.locator(".player video").evaluate(f"v => {{ v.currentTime = {t}; }}")
            await page.wait_for_function(
                f"() => document.querySelector('.minimap-canvas').dataset.time === '{t:.2f}'",
                timeout=15_000,
            )
            picture = await minimap.evaluate("c => c.toDataURL()")
            return picture, int(await minimap.get_attribute("data-players") or 0)

        early, early_players = await minimap_at(0.5)
        late, late_players = await minimap_at(3.0)
        assert early_players > 0 and late_players > 0, (early_players, late_players)
        assert early != late  # the players moved between the two times

        # While it plays, the minimap keeps up with the video.
        await page.locator(".player video").evaluate("v => { v.currentTime = 0; v.play(); }")
        await page.wait_for_function(
            "() => { const v = document.querySelector('.player video');"
            " const t = Number(document.querySelector('.minimap-canvas').dataset.time);"
            " return v.currentTime > 1 && Math.abs(v.currentTime - t) < 0.5; }",
            timeout=15_000,
        )


async def test_admins_see_members_devices_and_codes(site: Site) -> None:
    async with browsing(site) as page:
        await sign_in(page, site, site.admin)
        await page.get_by_role("link", name="Members & devices").click()
        await page.get_by_role("heading", name="Members", exact=True).wait_for()
        await page.locator("tr", has_text=site.admin.email).wait_for()
        await page.get_by_role("rowheader", name="pitch-1").wait_for()  # the provisioned box
        await page.get_by_role("button", name="Create provisioning code").click()
        code = page.locator("output.code")
        await code.wait_for()
        assert len(await code.inner_text()) >= 16


async def test_a_viewer_of_another_organization_sees_no_trace_of_the_match(site: Site) -> None:
    async with browsing(site) as page:
        bodies: list[str] = []

        async def keep(response: Any) -> None:
            if "json" in (response.headers.get("content-type") or ""):
                with contextlib.suppress(Exception):
                    bodies.append(await response.text())

        page.on("response", keep)
        await sign_in(page, site, site.outsider)
        await page.locator("#match-summary", has_text="No matches found.").wait_for()
        await page.goto(site.match_url())
        await page.get_by_role("heading", name="Not found").wait_for()
        await page.goto(f"{site.url}/app/#/orgs/{site.org_id}")
        await page.get_by_role("heading", name="Not found").wait_for()
        assert TITLE not in await page.content()
        assert not [body for body in bodies if TITLE in body or "Hillcrest" in body]


async def test_an_expired_session_returns_to_sign_in(site: Site) -> None:
    async with browsing(site) as page:
        await sign_in(page, site, site.admin)
        await page.get_by_role("heading", name="Matches").wait_for()
        stored = json.loads(
            await page.evaluate("localStorage.getItem('polyvision.session')") or "{}"
        )
        # The session ends behind the page's back: the refresh token's family is revoked and
        # the access token no longer verifies, as after its 15 minutes.
        async with httpx.AsyncClient(base_url=site.url) as http:
            revoked = await http.post("/auth/logout", json={"refresh_token": stored["refresh"]})
        assert revoked.status_code == 204
        await page.evaluate(
            "s => localStorage.setItem('polyvision.session', JSON.stringify(s))",
            {**stored, "access": stored["access"][:-8] + "expired!"},
        )
        # The visitor comes back to the page later (it reads the stored session again).
        await page.goto(f"{site.url}/app/#/orgs/{site.org_id}/admin")
        await page.reload()
        await page.get_by_text("Your session has expired. Sign in again.").wait_for()
        await page.get_by_label("Password").wait_for()
        assert await page.evaluate("localStorage.getItem('polyvision.session')") is None
        assert TITLE not in await page.content()


AXE_RUN = """async () => {
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations
        .filter(v => v.impact === "serious" || v.impact === "critical")
        .map(v => `${v.impact} ${v.id}: ${v.help} at `
            + v.nodes.map(n => n.target.join(" ")).slice(0, 4).join(", "));
}"""


# The innermost elements reaching past the right edge of the screen.
WIDER_THAN_THE_SCREEN = """(width) => {
    const edge = width + 1;
    if (document.documentElement.scrollWidth <= edge) return [];
    // What scrolls inside its own box (tables, the panned video) is not the page's overflow.
    const inside = e => e.parentElement && e.parentElement.closest(".table-wrap, .frame");
    const wide = [...document.querySelectorAll("body *")].filter(e => {
        const box = e.getBoundingClientRect();
        return box.width > 0 && box.right > edge && !inside(e);
    });
    return wide.filter(e => !wide.some(other => other !== e && e.contains(other)))
        .slice(0, 5)
        .map(e => `${e.tagName}.${e.className} ends at ${e.getBoundingClientRect().right}px`);
}"""


async def _axe(page: Page, where: str) -> list[str]:
    await page.evaluate(AXE.read_text())
    return [f"{where}: {found}" for found in await page.evaluate(AXE_RUN)]


async def test_accessible_and_responsive_with_screenshots(site: Site) -> None:
    await site.wait_processed()
    SCREENSHOTS.mkdir(exist_ok=True)
    violations: list[str] = []
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        async with browsing(site, viewport) as page:
            await page.goto(f"{site.url}/app/")
            await page.get_by_label("Email").wait_for()
            violations += await _axe(page, f"{name} sign-in")
            await page.screenshot(path=SCREENSHOTS / f"{name}-sign-in.png")

            await sign_in(page, site, site.admin)
            await page.locator(".match-card").first.wait_for()
            violations += await _axe(page, f"{name} matches")
            await page.screenshot(path=SCREENSHOTS / f"{name}-matches.png", full_page=True)

            await page.goto(site.match_url())
            await page.locator(".player[data-engine]").wait_for(timeout=20_000)
            await page.locator("#heatmap-team-0[data-total]").wait_for(timeout=20_000)
            await page.locator("tr[data-track]").first.wait_for()
            await page.locator(".player video").evaluate(
                "v => new Promise(r => { v.addEventListener('seeked', r, { once: true });"
                " v.currentTime = 2; })"
            )
            await page.wait_for_function(
                "() => document.querySelector('.minimap-canvas').dataset.time === '2.00'"
            )
            await page.screenshot(path=SCREENSHOTS / f"{name}-match.png", full_page=True)
            # Nothing is wider than the screen: the page reflows instead of scrolling sideways.
            wide = await page.evaluate(WIDER_THAN_THE_SCREEN, viewport["width"])
            assert not wide, f"{name}: the match page scrolls sideways: {wide}"
            violations += await _axe(page, f"{name} match")

            if name == "desktop":
                await page.goto(f"{site.url}/app/#/orgs/{site.org_id}/admin")
                await page.get_by_role("heading", name="Devices", exact=True).wait_for()
                violations += await _axe(page, f"{name} admin")
                await page.screenshot(path=SCREENSHOTS / f"{name}-admin.png", full_page=True)
    assert not violations, "\n".join(violations)
