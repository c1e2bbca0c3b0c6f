"""The dashboard in headless Chromium (Playwright for Python driving Debian's `chromium`): a wrong
token refused, sign-in, every page loading with no console error and no failed request, a
journey's counts equal to `rapport report journey --json`, a contact, and pausing a journey from
its page holding its runs (the workflow's status query says paused). One browser for the session;
one app served by uvicorn on the session's stack (dev server, worker, store). Screenshots go to
the artefacts directory printed at the end (RAPPORT_ARTEFACTS, default a pytest temp dir)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from api.app import create_app
from api.dashboard.pages import WRONG_TOKEN
from runtime.starter import start_run
from tests.api.helpers import serve
from tests.dashboard.conftest import ADMIN_TOKEN, WRITE_KEY, winback_plan
from tests.stack.helpers import ROOT, Stack
from tests.store.test_report_journey import worked_example as journey_runs
from tests.store.test_report_loyalty import worked_example as loyalty_events
from workflows.compiler import compile_journey

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("RAPPORT_REQUIRE_BROWSER") == "1"
try:
    from playwright.async_api import (
        Browser,
        ConsoleMessage,
        Locator,
        Page,
        Request,
        Response,
        async_playwright,
    )
except ImportError:  # pragma: no cover - the dev dependencies install it
    async_playwright = None  # type: ignore[assignment]

if (CHROMIUM is None or async_playwright is None) and not REQUIRED:
    pytest.skip(
        "browser tests skipped: no Chromium installed (apt-get install chromium); "
        "RAPPORT_REQUIRE_BROWSER=1 makes this a failure",
        allow_module_level=True,
    )

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}

# A run sends, then waits an hour: paused meanwhile, its status query says so.
HOLD = """\
name: Dashboard hold check
trigger: manual
holdout: 0
steps:
  - id: hello
    send: email
    template: onboarding/welcome
    category: transactional
  - id: pause_point
    wait: 1h
  - id: again
    send: email
    template: onboarding/welcome
    category: transactional
"""


@dataclass
class Served:
    url: str
    contacts: list[str]
    artefacts: Path


@pytest.fixture(scope="session")
async def dashboard(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    directory = tmp_path_factory.mktemp("dashboard-browser")
    path = directory / "dash_hold.yaml"
    path.write_text(HOLD, encoding="utf-8")
    hold, diagnostics = compile_journey(path, ROOT / "templates")
    assert hold is not None, diagnostics
    plans = {**stack.plans, "dash_hold": hold, "winback": winback_plan(directory)}
    journey_runs(stack.store)  # docs/metrics.md's worked example, journey `winback`
    loyalty_events(stack.store)  # and its loyalty example (2026, contacts of their own)

    async def client() -> Any:
        return stack.client

    settings = stack.settings.model_copy(
        update={"admin_token": SecretStr(ADMIN_TOKEN), "write_keys": WRITE_KEY}
    )
    contacts = [stack.contact("alice"), stack.contact("alice")]
    for contact in contacts:
        result = await start_run(
            stack.client, stack.store, hold, contact, task_queue=stack.task_queue
        )
        assert result.started, result.reason
    for contact in contacts:
        await stack.sent(contact)
    artefacts = Path(os.environ.get("RAPPORT_ARTEFACTS") or directory / "artefacts")
    artefacts.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, client, store=stack.store, plans=plans)
    async with serve(app) as url:
        yield Served(url, contacts, artefacts)
    print(f"\ndashboard screenshots: {artefacts}")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM is not None, "RAPPORT_REQUIRE_BROWSER=1 but no chromium is installed"
    assert async_playwright is not None, "RAPPORT_REQUIRE_BROWSER=1 but playwright is missing"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@dataclass
class Problems:
    """What a clean page load must not have: console errors, failed requests, 4xx/5xx."""

    seen: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.seen.append(f"console error: {message.text}")

    def _failed(self, request: Request) -> None:
        # ERR_ABORTED is the browser dropping a load the page no longer wants (the favicon of a
        # page the test already navigated away from), not a failure; a missing file or a server
        # error still shows here or as a 4xx/5xx below.
        if request.failure != "net::ERR_ABORTED":
            self.seen.append(f"failed request: {request.url} ({request.failure})")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.seen.append(f"{response.status} for {response.url}")


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    yield await context.new_page()
    await context.close()


async def chart_shows(mark: Locator, value: float, text: str | None = None) -> None:
    """An SVG chart's mark carries the report's number and shows it as its label."""
    assert float(await mark.get_attribute("data-value") or "nan") == value
    label = await mark.locator('[data-figure="value"]').text_content()
    assert label == (text if text is not None else f"{value:g}")


async def sign_in(page: Page, served: Served, token: str = ADMIN_TOKEN) -> None:
    await page.goto(f"{served.url}/dashboard")
    await page.get_by_label("Admin token").fill(token)
    await page.get_by_role("button", name="Sign in").click()


async def test_a_wrong_token_is_refused(page: Page, dashboard: Served) -> None:
    await sign_in(page, dashboard, token="not-the-token")
    assert await page.locator(".error").inner_text() == WRONG_TOKEN
    assert page.url.startswith(f"{dashboard.url}/dashboard/login")
    await page.screenshot(path=dashboard.artefacts / "wrong-token.png")


async def test_every_page_loads_clean_and_the_journey_shows_the_reports_counts(
    page: Page, dashboard: Served, cli: Any, stack: Stack
) -> None:
    problems = Problems()
    problems.watch(page)
    await sign_in(page, dashboard)
    assert await page.locator("h1").inner_text() == "Journeys"
    row = page.locator('tr[data-journey="dash_hold"]')
    assert await row.locator('[data-figure="in_flight"]').inner_text() == "2"
    await page.screenshot(path=dashboard.artefacts / "journeys.png", full_page=True)

    # The worked example's journey, for its period, against the CLI's JSON.
    period = "since=2026-07-01&until=2026-08-01"
    await page.goto(f"{dashboard.url}/dashboard/journeys/winback?{period}")
    code, out, error = await cli(
        "report", "journey", "winback", "--since", "2026-07-01", "--until", "2026-08-01", "--json"
    )
    assert code == 0, (out, error)
    report = json.loads(out)
    assert await page.locator('[data-figure="entered"]').inner_text() == str(report["entered"])
    for step in report["steps"]:
        node = page.locator(f'svg#diagram [data-step="{step["id"]}"] [data-figure="reached"]')
        assert await node.text_content() == str(step["reached"]), step["id"]
        await chart_shows(
            page.locator(f'svg#funnel g.bar[data-step="{step["id"]}"]'), step["reached"]
        )
    for outcome, count in report["outcomes"].items():
        assert await page.locator(f'[data-outcome="{outcome}"]').inner_text() == str(count)
    for channel, figures in report["messages"].items():
        for status, count in figures.items():
            bar = page.locator(f'svg g.bar[data-channel="{channel}"][data-status="{status}"]')
            await chart_shows(bar, count)
    conversion = report["conversion"]
    for group in ("treated", "holdout"):
        bar = page.locator(f'svg#conversion g.bar[data-group="{group}"]')
        await chart_shows(
            bar, conversion[group]["rate"], f"{conversion[group]['rate'] * 100:.1f} %"
        )
    interval = page.locator("svg#lift g.interval")
    assert [
        float(await interval.get_attribute(name) or "nan")
        for name in ("data-value", "data-low", "data-high")
    ] == [conversion["lift"], *conversion["lift_ci95"]]
    await page.screenshot(path=dashboard.artefacts / "journey.png", full_page=True)

    for path in (
        "/dashboard/journeys/dash_hold",
        "/dashboard/loyalty",
        f"/dashboard/contacts?q={dashboard.contacts[0]}",
        f"/dashboard/contacts/{dashboard.contacts[0]}",
    ):
        await page.goto(f"{dashboard.url}{path}")
        name = path.strip("/").replace("/", "-").replace("?q=", "-")
        await page.screenshot(path=dashboard.artefacts / f"{name}.png", full_page=True)
    assert await page.locator("h1").inner_text() == f"Contact {dashboard.contacts[0]}"
    assert await page.locator('tr[data-run] [data-figure="now"]').inner_text() == (
        "pause_point (wait), waiting for time until "
        + (await page.locator('tr[data-run] [data-figure="now"]').inner_text()).split("until ")[1]
    )
    # The welcome email as the contact received it: the outbox's HTML in a frame without scripts.
    sent = stack.store.ledger.messages_for_contact(dashboard.contacts[0])
    received = page.locator(f'details.received[data-message="{sent[-1].idempotency_key}"]')
    assert await received.locator('[data-figure="subject"]').inner_text() == sent[-1].subject
    assert await received.locator("iframe.email").get_attribute("sandbox") == ""
    email = page.frame_locator(
        f'details.received[data-message="{sent[-1].idempotency_key}"] iframe'
    )
    assert await email.locator("h1").inner_text() == "Welcome, Alice!"
    # The keyboard reaches the navigation first, with a visible focus ring.
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    assert problems.seen == []


async def test_the_loyalty_charts_show_the_reports_numbers(
    page: Page, dashboard: Served, cli: Any
) -> None:
    problems = Problems()
    problems.watch(page)
    await sign_in(page, dashboard)
    await page.goto(f"{dashboard.url}/dashboard/loyalty?since=2026-07-01&until=2026-10-01")
    quarter = await loyalty_json(cli, "2026-07-01", "2026-10-01", "--cohorts")
    september = await loyalty_json(cli, "2026-09-01", "2026-10-01")
    for segment, size in quarter["rfm_segments"].items():
        await chart_shows(page.locator(f'svg#rfm g.bar[data-segment="{segment}"]'), size)
    for cohort in quarter["cohorts"]:
        row = page.locator(f'svg#cohorts g.cohort[data-month="{cohort["month"]}"]')
        assert await row.get_attribute("data-customers") == str(cohort["customers"])
        cells = row.locator("g.cell")
        assert [
            float(v or "nan")
            for v in await cells.evaluate_all(
                "cells => cells.map(c => c.getAttribute('data-value'))"
            )
        ] == cohort["retention"]
    # The month-by-month charts end with September: its own report's figures.
    for chart, series, value in (
        ("retention", "retention", september["retention_rate"]),
        ("retention", "churn", september["churn_rate"]),
        ("nps", "NPS", september["nps"]["score"]),
    ):
        point = page.locator(f'svg#{chart} [data-series="{series}"] [data-month="2026-09"]')
        assert float(await point.get_attribute("data-value") or "nan") == value, series
    await page.screenshot(path=dashboard.artefacts / "loyalty-quarter.png", full_page=True)
    assert problems.seen == []


async def loyalty_json(cli: Any, since: str, until: str, *more: str) -> dict[str, Any]:
    code, out, error = await cli(
        "report", "loyalty", "--since", since, "--until", until, *more, "--json"
    )
    assert code == 0, (out, error)
    report: dict[str, Any] = json.loads(out)
    return report


async def test_pausing_a_journey_holds_its_runs(page: Page, dashboard: Served) -> None:
    await sign_in(page, dashboard)
    await page.goto(f"{dashboard.url}/dashboard/journeys/dash_hold")
    assert await page.locator("#journey-status").inner_text() == "active"
    await page.get_by_role("button", name="Pause the journey").click()
    assert await page.locator("#journey-status").inner_text() == "paused"
    assert await page.locator(".notice").inner_text() == (
        "paused dash_hold: 2 running run(s) signalled"
    )
    await page.goto(f"{dashboard.url}/dashboard/contacts/{dashboard.contacts[1]}")
    now = await page.locator('tr[data-run] [data-figure="now"]').inner_text()
    assert now.startswith("pause_point (wait), waiting for time until "), now
    assert now.endswith(", paused"), now
    await page.screenshot(path=dashboard.artefacts / "contact-paused.png", full_page=True)

    await page.goto(f"{dashboard.url}/dashboard/journeys/dash_hold")
    await page.get_by_role("button", name="Resume the journey").click()
    assert await page.locator("#journey-status").inner_text() == "active"

    # Cancel the second contact's run from its page.
    await page.goto(f"{dashboard.url}/dashboard/contacts/{dashboard.contacts[1]}")
    await page.get_by_role("button", name="Cancel run").click()
    notice = await page.locator(".notice").inner_text()
    assert notice == f"journey:dash_hold:{dashboard.contacts[1]}: cancelled"
    assert await page.locator("tr[data-run] td").nth(1).inner_text() == "cancelled"
