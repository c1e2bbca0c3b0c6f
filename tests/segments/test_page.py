"""One page of a tick without Temporal: what is read (in bulk) and who is chosen, on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import event
from temporalio.testing import ActivityEnvironment

from activities.contact_context import answer_event_questions
from activities.segment_activities import SegmentActivities, select_page
from runtime.starter import StartResult
from store import Store
from store.records import ContactRecord, EventRecord, RunRecord
from tests.stack.helpers import ROOT
from workflows.compiler import compile_journey
from workflows.event_questions import EventQuestion
from workflows.plan import JourneyPlan
from workflows.segment_workflow import EnrolPageInput

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def plan_for(tmp_path: Path, segment: str, extra: str = "") -> JourneyPlan:
    path = tmp_path / "lapsed.yaml"
    path.write_text(
        f"name: Lapsed\ntrigger:\n  segment: '{segment}'\n  schedule: '0 9 * * *'\n{extra}\n"
        "steps:\n  - send: email\n    template: onboarding/welcome\n"
    )
    plan, diagnostics = compile_journey(path, ROOT / "templates")
    assert plan is not None, diagnostics
    return plan


def test_a_page_gets_its_answers_in_one_query_per_question(store: Store) -> None:
    for number in range(12):
        store.record_event(
            EventRecord(contact_id="a", name="order_placed", timestamp=NOW - timedelta(days=number))
        )
    store.record_event(
        EventRecord(
            contact_id="a",
            name="order_placed",
            timestamp=NOW + timedelta(hours=1),  # not yet happened at NOW: does not count
        )
    )
    for _ in range(30):
        store.record_event(EventRecord(contact_id="a", name="page_viewed", timestamp=NOW))
    store.record_event(
        EventRecord(
            contact_id="b", name="order_placed", timestamp=NOW, properties={"order_id": "B-1"}
        )
    )
    store.record_event(EventRecord(contact_id="z", name="order_placed", timestamp=NOW))
    questions = [
        EventQuestion(kind="count", name="order_placed"),
        EventQuestion(kind="count", name="order_placed", within="5d"),
        EventQuestion(kind="last", name="order_placed"),
    ]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        found = answer_event_questions(store, ["a", "b", "c"], questions, NOW)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 3
    assert found["a"].counts == {"count:order_placed": 12, "count:order_placed:5d": 6}
    assert found["c"].counts == {"count:order_placed": 0, "count:order_placed:5d": 0}
    latest_a = found["a"].latest["last:order_placed"]
    assert latest_a is not None and latest_a.timestamp == NOW
    latest_b = found["b"].latest["last:order_placed"]
    assert latest_b is not None and latest_b.properties == {"order_id": "B-1"}
    assert found["c"].latest == {"last:order_placed": None}
    assert sorted(found) == ["a", "b", "c"]


def test_a_page_reads_a_fixed_number_of_queries_whatever_its_size(
    store: Store, tmp_path: Path
) -> None:
    lapsed = 'days_since(contact.last_order_at) >= 60 and count_events("order_placed") == 0'
    plan = plan_for(tmp_path, lapsed)
    store.upsert_contacts(
        ContactRecord(
            id=f"c{n:03d}", attributes={"last_order_at": (NOW - timedelta(days=n)).isoformat()}
        )
        for n in range(200)
    )
    for n in range(0, 200, 3):
        ordered = NOW - timedelta(days=1)
        order = EventRecord(contact_id=f"c{n:03d}", name="order_placed", timestamp=ordered)
        store.record_event(order)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        selection = select_page(
            store,
            plan,
            EnrolPageInput(
                journey=plan.journey_id,
                version=plan.version,
                tick_id="t",
                tick_at=NOW,
                page_size=150,
            ),
            NOW,
        )
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # paused flags, contacts, their traits, their one event question, their runs
    assert len(selects) == 5
    assert selection.result["scanned"] == 150 and selection.next_after == "c149"
    expected = [f"c{n:03d}" for n in range(60, 150) if n % 3]
    assert selection.to_start == expected
    assert selection.result["matched"] == len(expected)


def test_reentry_and_this_tick_are_decided_from_the_page_runs(store: Store, tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "true", extra="reentry: 30d")
    store.upsert_contacts(ContactRecord(id=i) for i in ("a", "b", "c", "d"))

    def ran(contact: str, days: int, tick: str = "old") -> None:
        store.record_run(
            RunRecord(
                workflow_id=f"journey:lapsed:{contact}",
                run_id=f"r-{contact}-{days}",
                contact_id=contact,
                journey="lapsed",
                version="v",
                entered_at=NOW - timedelta(days=days),
                data={"segment_tick": tick},
            )
        )

    ran("a", 3)  # too recent for 30d
    ran("b", 40)  # long enough ago
    ran("c", 0, tick="t")  # this very tick
    request = EnrolPageInput(
        journey=plan.journey_id, version=plan.version, tick_id="t", tick_at=NOW
    )
    selection = select_page(store, plan, request, NOW)
    assert selection.to_start == ["b", "d"]
    assert selection.result == {
        "scanned": 4,
        "matched": 4,
        "skipped_reentry": 1,
        "already_enrolled": 1,
    }
    assert selection.next_after is None  # a short page is the last


async def test_the_page_activity_heartbeats_while_a_start_hangs(
    store: Store, tmp_path: Path
) -> None:
    """A worker killed mid-page is noticed by the heartbeat timeout: the activity must beat
    while it waits on a start, not only between starts (it used to, with a 2-minute timeout)."""
    plan = plan_for(tmp_path, "true")
    store.upsert_contacts(ContactRecord(id=i) for i in ("a", "b"))
    beats: list[tuple[Any, ...]] = []
    beaten = asyncio.Event()

    def on_heartbeat(*details: Any) -> None:
        beats.append(details)
        if details == (None,):  # a regular beat, not one at a point of progress
            beaten.set()

    async def start_once_beaten(*args: Any, **kwargs: Any) -> StartResult:
        await beaten.wait()  # hangs for good unless the activity beats on its own
        return StartResult(
            journey="lapsed", version=plan.version, contact_id="a", workflow_id="w", run_id="r"
        )

    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(
        environment.info, heartbeat_timeout=timedelta(milliseconds=300)
    )
    environment.on_heartbeat = on_heartbeat
    activities = SegmentActivities(store, cast(Any, None), "q", start=start_once_beaten)
    request = EnrolPageInput(plan=plan, tick_id="t", tick_at=NOW, concurrency=1)
    page = await asyncio.wait_for(environment.run(activities.enrol_page, request), 30)
    assert page.enrolled == 2
    # Beats at the points of progress too: the page read, each start.
    assert {(None, "read"), (None, "a"), (None, "b")} <= set(beats)
