"""The demo shop's journey history (runtime/demo_journeys.py): the runs the sample journeys
would have made over the shop's history, consistent with it, ended, and seeded once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from providers.outbox import read_outbox_html
from reports.journey import JourneyQuery, journey_report
from runtime.demo_shop import DemoShop, seed_demo_shop, shop
from store import Store
from tests.stack.helpers import project_settings
from workflows.project import compile_project

END = datetime(2026, 12, 1, tzinfo=UTC)
CONTACTS, SEED = 400, 11


@dataclass
class Demo:
    store: Store
    seeded: DemoShop
    outbox: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    directory: Path = tmp_path_factory.mktemp("demo-journeys")
    settings = project_settings(data_dir=directory)
    plans = compile_project(settings).plans
    store = Store.open(f"sqlite:///{directory / 'rapport.db'}")
    seeded = seed_demo_shop(store, CONTACTS, SEED, END, journeys=(settings, plans))
    yield Demo(store, seeded, settings.outbox_dir)
    store.close()


def test_every_sign_up_of_the_last_months_with_an_email_entered_onboarding(
    demo: Demo,
) -> None:
    store, seeded = demo.store, demo.seeded
    people, events = shop(CONTACTS, SEED, END)
    with_email = {p.id for p in people if p.email}
    signed_up = {
        e.contact_id
        for e in events
        if e.name == "signed_up"
        and e.timestamp is not None
        and END - timedelta(days=150) <= e.timestamp < END - timedelta(days=8)
        and e.contact_id in with_email
    }
    runs = store.list_runs("onboarding")
    entered = {run.contact_id for run in runs}
    # Sign-ups in the last week may still be in the journey: those are left out.
    assert signed_up <= entered
    assert len(runs) == seeded.runs.by_journey["onboarding"]
    assert all(run.status == "completed" and run.ended_at is not None for run in runs)
    assert all(run.ended_at <= END for run in runs if run.ended_at)  # type: ignore[operator]


def test_a_converted_run_ended_at_the_contacts_first_order_after_entry(
    demo: Demo,
) -> None:
    store = demo.store
    _, events = shop(CONTACTS, SEED, END)
    orders: dict[str, list[datetime]] = {}
    for event in events:
        if event.name == "order_placed" and event.timestamp is not None:
            orders.setdefault(event.contact_id, []).append(event.timestamp)
    converted = [r for r in store.list_runs("onboarding") if r.outcome == "converted"]
    assert converted
    for run in converted:
        first = min(t for t in orders[run.contact_id] if t > run.entered_at)
        assert run.ended_at == first, run.contact_id
    others = [r for r in store.list_runs("onboarding") if r.outcome != "converted"]
    for run in others:  # no order while in the journey
        assert not any(
            run.entered_at < t <= run.ended_at  # type: ignore[operator]
            for t in orders.get(run.contact_id, [])
        ), run.contact_id


def test_the_control_group_gets_only_the_transactional_welcome(
    demo: Demo,
) -> None:
    store = demo.store
    held = [r for r in store.list_runs("onboarding") if r.holdout]
    assert held
    for run in held:
        for message in store.ledger.messages_for_contact(run.contact_id):
            if message.journey != "onboarding":
                continue
            if message.category == "marketing":
                assert message.status == "skipped"
                assert message.reason == "holdout: the contact is in the journey's control group"
            else:
                assert message.template == "onboarding/welcome"


def test_recent_messages_carry_what_the_template_rendered_for_the_contact(
    demo: Demo,
) -> None:
    store = demo.store
    run = max(store.list_runs("onboarding"), key=lambda r: r.entered_at)
    contact = store.get_contact(run.contact_id)
    assert contact is not None
    welcome = next(
        m
        for m in store.ledger.messages_for_contact(run.contact_id)
        if m.template == "onboarding/welcome"
    )
    first_name = contact.attributes["first_name"]
    assert welcome.subject == f"Welcome to Rapport Coffee Co., {first_name}"
    assert welcome.body is not None and f"Welcome, {first_name}!" in welcome.body
    html = read_outbox_html(demo.outbox, welcome.idempotency_key)  # as the local outbox keeps it
    assert html is not None and f">Welcome, {first_name}!</h1>" in html


def test_the_report_counts_the_runs_and_seeding_again_adds_none(demo: Demo, tmp_path: Path) -> None:
    store, seeded = demo.store, demo.seeded
    report = journey_report(store, JourneyQuery("onboarding"))
    assert report["entered"] == seeded.runs.by_journey["onboarding"]
    assert report["outcomes"]["running"] == 0
    settings = project_settings(data_dir=tmp_path)
    plans = compile_project(settings).plans
    again = seed_demo_shop(store, CONTACTS, SEED, END, journeys=(settings, plans))
    assert (again.events, again.runs.runs, again.runs.messages) == (0, 0, 0)
    assert journey_report(store, JourneyQuery("onboarding")) == report
