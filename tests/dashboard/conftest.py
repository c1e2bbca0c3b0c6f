"""The dashboard on a seeded SQLite store: the journey report's worked example (journey
`winback`, compiled from WINBACK below) and the loyalty report's, served in process for the HTTP
tests and by uvicorn for the browser tests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from runtime.starter import TemporalUnavailableError
from store import Store
from store.records import ContactRecord, EventRecord
from tests.stack.helpers import ROOT, project_settings
from tests.store.test_report_journey import worked_example as journey_runs
from tests.store.test_report_loyalty import worked_example as loyalty_events
from workflows.compiler import compile_journey
from workflows.plan import JourneyPlan

ADMIN_TOKEN = "dashboard-admin-token-for-tests"
WRITE_KEY = "dashboard-write-key"

# The steps of the journey report's worked example (tests/store/test_report_journey.py).
WINBACK = """\
name: Win back (worked example)
trigger:
  event: lapsed
goal: order_placed
holdout: 10
steps:
  - id: welcome
    send: email
    template: win_back/we_miss_you
  - id: wait_2
    wait: 2d
  - id: ab
    split: {offer_a: 1, offer_b: 1}
  - id: offer_a
    send: email
    template: win_back/vip_offer
    next: done
  - id: offer_b
    send: sms
    template: win_back/last_chance
  - id: done
    exit: completed
"""


def winback_plan(directory: Path) -> JourneyPlan:
    path = directory / "winback.yaml"
    path.write_text(WINBACK, encoding="utf-8")
    plan, diagnostics = compile_journey(path, ROOT / "templates")
    assert plan is not None, diagnostics
    return plan


async def no_temporal() -> Any:
    raise TemporalUnavailableError("127.0.0.1:1", "connection refused")


@pytest.fixture(scope="session")
def seeded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Store, str, dict[str, JourneyPlan]]]:
    directory = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{directory / 'rapport.db'}"
    store = Store.open(url)
    journey_runs(store)
    loyalty_events(store)
    # r1 of the journey example, with a profile, consent and an event of its own.
    store.upsert_contact(ContactRecord(id="r1", email="rita@example.com", timezone="Europe/London"))
    store.set_consent("r1", "email", "subscribed", source="signup_form")
    store.record_event(EventRecord(contact_id="r1", name="lapsed", properties={"days": 61}))
    yield store, url, {"winback": winback_plan(directory)}
    store.close()


def dashboard_app(
    seeded: tuple[Store, str, dict[str, JourneyPlan]], client: Any = no_temporal, **settings: Any
) -> FastAPI:
    store, url, plans = seeded
    values = {"admin_token": ADMIN_TOKEN, "write_keys": WRITE_KEY, "database_url": url, **settings}
    return create_app(project_settings(**values), client, store=store, plans=plans)


@pytest.fixture
async def web(
    seeded: tuple[Store, str, dict[str, JourneyPlan]],
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the dashboard app (not signed in); Temporal is unreachable."""
    transport = httpx.ASGITransport(app=dashboard_app(seeded))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field in the page"
    return match.group(1)


async def sign_in(
    client: httpx.AsyncClient, base: str = "/dashboard", token: str = ADMIN_TOKEN
) -> httpx.Response:
    page = await client.get(f"{base}/login")
    return await client.post(
        f"{base}/login", data={"csrf": csrf_of(page.text), "token": token, "next": "/dashboard"}
    )
