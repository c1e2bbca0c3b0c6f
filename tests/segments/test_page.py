"""One page of a tick without Temporal: what is read (in bulk) and who is chosen, on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from activities.segment_activities import (
    HistoryNeeds,
    histories,
    history_needs,
    select_page,
)
from store import Store
from store.records import ContactRecord, EventRecord, RunRecord
from tests.stack.helpers import ROOT
from workflows.compiler import compile_journey
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


def test_history_needs_only_the_named_events() -> None:
    assert history_needs(['count_events("a") > 0 and days_since(contact.x) > 3']) == (
        HistoryNeeds(frozenset({"a"}), properties=False)
    )
    assert history_needs(["contact.vip", 'last_event("b").properties.x == 1']) == (
        HistoryNeeds(frozenset({"b"}), properties=True)
    )
    assert history_needs(["count_events(contact.favourite) > 0"]).names is None
    assert history_needs(["contact.vip"]).none


def test_histories_in_one_query_bounded_per_contact(store: Store) -> None:
    for number in range(12):
        store.record_event(
            EventRecord(contact_id="a", name="order_placed", timestamp=NOW - timedelta(days=number))
        )
    store.record_event(EventRecord(contact_id="a", name="page_viewed", timestamp=NOW))
    store.record_event(EventRecord(contact_id="b", name="order_placed", timestamp=NOW))
    store.record_event(EventRecord(contact_id="z", name="order_placed", timestamp=NOW))
    found = histories(store, ["a", "b"], HistoryNeeds(frozenset({"order_placed"})), limit=5)
    assert sorted(found) == ["a", "b"]
    assert len(found["a"]) == 5  # the five latest
    assert min(e.timestamp for e in found["a"]) == NOW - timedelta(days=4)
    assert {e.name for e in found["a"]} == {"order_placed"}
    assert histories(store, ["a"], HistoryNeeds()) == {}


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
            EnrolPageInput(plan=plan, tick_id="t", tick_at=NOW, page_size=150),
            NOW,
        )
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 4  # paused flags, contacts, their events, their runs
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
    selection = select_page(store, EnrolPageInput(plan=plan, tick_id="t", tick_at=NOW), NOW)
    assert selection.to_start == ["b", "d"]
    assert selection.result == {
        "scanned": 4,
        "matched": 4,
        "skipped_reentry": 1,
        "already_enrolled": 1,
    }
    assert selection.next_after is None  # a short page is the last
