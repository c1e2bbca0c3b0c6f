"""Traits kept current event by event agree with a rebuild in SQL, on SQLite and PostgreSQL;
RFM scores by quintile (edges, ties) and segment moves leave trait_changed events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runtime.traits import rebuild
from settings import Settings
from store import ContactRecord, EventRecord, Store
from workflows.trait_compiler import compile_traits
from workflows.trait_program import TraitProgram

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

TRAITS = """\
spend:
  sum: order_placed.total
orders:
  count: order_placed
orders_with_coupon:
  count: order_placed.coupon
big_recent:
  count: order_placed
  within: 30d
  when: event.properties.total >= 50 and event.properties.channel in ["web", "app"]
aov:
  avg: order_placed.total
smallest:
  min: order_placed.total
largest:
  max: order_placed.total
first_channel:
  first: order_placed.channel
last_order_at:
  last: order_placed
first_seen:
  min: page_viewed.timestamp
tier:
  value: '"gold" if contact.spend >= 500 else "silver" if contact.spend >= 150 else "bronze"'
label:
  value: contact.tier ~ "/" ~ (contact.plan | default("none"))
"""


@pytest.fixture
def program(tmp_path: Path) -> TraitProgram:
    (tmp_path / "traits").mkdir()
    (tmp_path / "traits" / "t.yaml").write_text(TRAITS)
    result = compile_traits([tmp_path / "traits"])
    assert result.program is not None, [str(d) for d in result.diagnostics]
    return TraitProgram(
        aggregates=result.program.aggregates,
        derived=result.program.derived,
        clock=lambda: NOW,
    )


def settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def order(contact: str, n: int, days_ago: float, **properties: object) -> EventRecord:
    return EventRecord(
        contact_id=contact,
        name="order_placed",
        properties=properties,
        timestamp=NOW - timedelta(days=days_ago),
        message_id=f"{contact}-{n}",
    )


def test_incremental_traits_equal_a_rebuild(store: Store, program: TraitProgram) -> None:
    store.use_traits(program)
    store.upsert_contact(ContactRecord(id="a", attributes={"plan": "pro"}))
    events = [
        order("a", 1, 100, total=120, channel="web", coupon="X"),
        order("a", 2, 10, total=60.5, channel="app"),
        order("a", 3, 5, total=40, channel="web"),
        order("a", 4, 20, total="n/a", channel="shop"),  # text: no sum, no avg, no min/max
        order("b", 1, 2, total=700, channel="web"),
        EventRecord(contact_id="a", name="page_viewed", timestamp=NOW - timedelta(days=300)),
        EventRecord(contact_id="a", name="page_viewed", timestamp=NOW - timedelta(days=30)),
    ]
    # History out of order: first/last/min follow the timestamps, not the arrival.
    for event in reversed(events):
        store.record_event(event)
    incremental = {c: store.traits_of(c) for c in ("a", "b")}
    assert incremental["a"] == {
        "spend": 220.5,
        "orders": 4,
        "orders_with_coupon": 1,
        "big_recent": 1,
        "aov": 73.5,
        "smallest": 40,
        "largest": 120,
        "first_channel": "web",
        "last_order_at": "2026-05-27T12:00:00+00:00",
        "first_seen": "2025-08-05T12:00:00+00:00",
        "tier": "silver",
        "label": "silver/pro",
    }
    assert incremental["b"]["tier"] == "gold" and incremental["b"]["label"] == "gold/none"

    report = rebuild(store, program, settings(), now=NOW)
    assert (report.aggregates, report.derived) == (0, 0)  # nothing differed
    rebuilt = {
        c: {k: v for k, v in store.traits_of(c).items() if not k.startswith("rfm_")}
        for c in ("a", "b")
    }
    assert rebuilt == incremental


def test_a_rebuild_drops_events_that_left_the_window(store: Store, program: TraitProgram) -> None:
    store.use_traits(program)
    store.record_event(order("a", 1, 25, total=80, channel="web"))
    assert store.traits_of("a")["big_recent"] == 1
    later = NOW + timedelta(days=10)
    report = rebuild(store, program, settings(), windows_only=True, now=later)
    assert report.aggregates == 1
    assert store.traits_of("a")["big_recent"] == 0
    [change] = [
        e
        for e in store.recent_events("a")
        if e.name == "trait_changed"
        and e.properties["trait"] == "big_recent"
        and e.timestamp == later
    ]
    assert change.properties == {"trait": "big_recent", "old": 1, "new": 0}


def customers(store: Store, rows: list[tuple[str, int, list[float]]]) -> None:
    """(contact, days since the last order, each order's total)."""
    for contact, last_days, totals in rows:
        for n, total in enumerate(totals):
            store.record_event(order(contact, n, last_days + 30 * n, total=total))


def rfm(store: Store, contact: str) -> tuple[object, ...]:
    traits = store.traits_of(contact)
    return tuple(
        traits.get(k)
        for k in ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_score", "rfm_segment")
    )


def test_rfm_quintiles_at_the_edges(store: Store) -> None:
    # Ten customers, all different: two per quintile; c0 is worst on every axis, c9 best.
    customers(store, [(f"c{i}", 100 - 10 * i, [10.0 * (i + 1)] * (i + 1)) for i in range(10)])
    rebuild(store, None, settings(), now=NOW)
    scores = [rfm(store, f"c{i}")[:3] for i in range(10)]
    assert scores == [(q, q, q) for q in (1, 1, 2, 2, 3, 3, 4, 4, 5, 5)]
    assert rfm(store, "c0")[3:] == ("111", "lost")
    assert rfm(store, "c9")[3:] == ("555", "champions")
    assert rfm(store, "c6")[3:] == ("444", "champions")  # R = 4 and F = 4: the lowest champion
    assert rfm(store, "c5")[3:] == ("333", "loyal")
    assert rfm(store, "c2")[3:] == ("222", "at_risk")
    assert store.trait_value_counts("rfm_segment") == {
        "at_risk": 2,
        "champions": 4,
        "lost": 2,
        "loyal": 2,
    }


def test_rfm_ties_share_a_score(store: Store) -> None:
    # Five customers with one order each on the same day: frequency and recency all tie.
    customers(store, [(f"t{i}", 40, [25.0 if i < 3 else 90.0]) for i in range(5)])
    rebuild(store, None, settings(), now=NOW)
    assert [rfm(store, f"t{i}")[:3] for i in range(5)] == [
        (1, 1, 1),
        (1, 1, 1),
        (1, 1, 1),
        (1, 1, 4),
        (1, 1, 4),
    ]
    assert {rfm(store, f"t{i}")[4] for i in range(5)} == {"lost"}


def test_segment_moves_leave_trait_changed_events(store: Store) -> None:
    customers(store, [("old", 300, [20.0]), ("new", 1, [30.0])])
    rebuild(store, None, settings(), now=NOW)
    assert (rfm(store, "old")[4], rfm(store, "new")[4]) == ("lost", "potential")
    store.record_event(order("old", 7, 0, total=500))
    store.record_event(order("old", 8, 0.5, total=500))
    later = NOW + timedelta(hours=1)
    report = rebuild(store, None, settings(), now=later)
    assert report.rfm > 0
    # Quintiles are relative: "old" now outranks "new" on recency, so both move.
    assert (rfm(store, "old")[4], rfm(store, "new")[4]) == ("loyal", "lost")
    moves = sorted(
        (e.contact_id, e.properties["old"], e.properties["new"])
        for e in store.unrouted_trait_changes()
        if e.properties["trait"] == "rfm_segment" and e.timestamp == later
    )
    assert moves == [("new", "potential", "lost"), ("old", "lost", "loyal")]
    assert rebuild(store, None, settings(), now=later + timedelta(hours=1)).rfm == 0


def test_a_rebuild_derives_every_contact_as_the_event_path_does(
    store: Store, program: TraitProgram
) -> None:
    # Events stored before the traits existed: only the rebuild computes them.
    store.upsert_contact(ContactRecord(id="pro", attributes={"plan": "pro"}))
    store.upsert_contact(ContactRecord(id="idle", attributes={"spend": 900}))  # no orders
    store.upsert_contact(ContactRecord(id="big"))
    for n, total in enumerate([100, 80]):
        store.record_event(order("pro", n, 10 + n, total=total))
    for n in range(6):
        store.record_event(order("big", n, 5 + n, total=100))
    report = rebuild(store, program, settings(), now=NOW)
    derived = {
        contact: (traits.get("tier"), traits.get("label"))
        for contact in ("pro", "idle", "big")
        for traits in [store.traits_of(contact)]
    }
    # A missing sum reads as 0 in a derived trait, so the spend attribute does not count.
    assert derived == {
        "pro": ("silver", "silver/pro"),
        "idle": ("bronze", "bronze/none"),
        "big": ("gold", "gold/none"),
    }
    assert report.derived == 6
    again = rebuild(store, program, settings(), now=NOW + timedelta(hours=1))
    assert (again.aggregates, again.derived, again.rfm) == (0, 0, 0)
    for contact in ("pro", "idle", "big"):  # the event-by-event path agrees
        record = store.get_contact(contact)
        assert record is not None
        values = program.derive(record, record.traits, NOW)
        assert (values["tier"], values["label"]) == derived[contact]


def test_trait_changed_is_stored_only_for_the_announced_traits(
    store: Store, program: TraitProgram
) -> None:
    store.use_traits(program, announced=frozenset({"tier"}))
    store.upsert_contact(ContactRecord(id="a"))
    store.record_event(order("a", 1, 3, total=200, channel="web"))
    report = rebuild(store, program, settings(), now=NOW + timedelta(days=60))
    changed = {
        (e.properties["trait"], e.properties["old"], e.properties["new"])
        for e in store.recent_events("a")
        if e.name == "trait_changed"
    }
    # Creating the contact derived tier (label reads an attribute); the order changed spend,
    # orders, … and tier; the rebuild moved big_recent and RFM: only tier's are stored.
    assert changed == {("tier", None, "bronze"), ("tier", "bronze", "silver")}
    assert report.aggregates == 1 and report.rfm == 5  # counted all the same
    store.use_traits(program, announced=frozenset())
    store.record_event(order("a", 2, 2, total=400))
    assert store.traits_of("a")["tier"] == "gold"
    assert len([e for e in store.recent_events("a") if e.name == "trait_changed"]) == 2
