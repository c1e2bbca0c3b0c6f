"""Trait rows in the store: values on the contact, counts per value in SQL, the updater hook
run in the event's transaction, `trait_changed` events, history batches and erasure."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from store import ContactRecord, EventRecord, Store
from store.traits import TraitRow

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class OrderCount:
    """The smallest real updater: `orders` counts order_placed, `spend` sums their totals."""

    def concerns(self, event_name: str) -> bool:
        return event_name == "order_placed"

    def apply(
        self,
        event: EventRecord,
        contact: Callable[[], ContactRecord],
        rows: Mapping[str, TraitRow],
    ) -> dict[str, TraitRow]:
        orders = rows.get("orders", TraitRow(0)).value
        spend = rows.get("spend", TraitRow(0)).value
        assert isinstance(orders, int) and isinstance(spend, int | float)
        total = event.properties.get("total", 0)
        assert isinstance(total, int | float)
        return {"orders": TraitRow(orders + 1), "spend": TraitRow(spend + total)}


def order(contact_id: str, message_id: str, total: float, days_ago: int = 0) -> EventRecord:
    return EventRecord(
        contact_id=contact_id,
        name="order_placed",
        properties={"total": total},
        timestamp=T0 - timedelta(days=days_ago),
        message_id=message_id,
    )


def test_set_traits_shows_on_the_contact_and_counts_by_value(store: Store) -> None:
    for contact_id, segment in [("a", "champions"), ("b", "champions"), ("c", "lost")]:
        store.upsert_contact(ContactRecord(id=contact_id))
        store.set_traits(contact_id, {"rfm_segment": segment, "orders": 3}, cause="test")
    store.set_traits("d", {"rfm_segment": None}, cause="test")

    assert store.trait_value_counts("rfm_segment") == {"champions": 2, "lost": 1}
    assert store.trait_value_counts("orders") == {"3": 3}
    assert store.trait_value_counts("unknown") == {}
    contact = store.get_contact("a")
    assert contact is not None and contact.traits == {"orders": 3, "rfm_segment": "champions"}
    assert store.traits_of("d") == {}
    [page] = list(store.iter_contact_pages())
    assert [c.traits.get("rfm_segment") for c in page] == ["champions", "champions", "lost"]


def test_set_traits_reports_changes_and_stores_trait_changed_events(store: Store) -> None:
    first = store.set_traits("a", {"tier": "silver"}, cause="rebuild-1", at=T0)
    assert [(c.trait, c.old, c.new) for c in first] == [("tier", None, "silver")]
    assert store.set_traits("a", {"tier": "silver"}, cause="rebuild-2", at=T0) == []
    store.set_traits("a", {"tier": "gold"}, cause="rebuild-3", at=T0)
    changed = [e for e in store.recent_events("a") if e.name == "trait_changed"]
    assert sorted((e.message_id, e.properties["new"]) for e in changed) == [
        ("rebuild-1:tier", "silver"),
        ("rebuild-3:tier", "gold"),
    ]
    assert all(e.source == "traits" and e.routed_at is None for e in changed)


def test_the_updater_runs_with_each_new_event_and_never_twice(store: Store) -> None:
    store.use_traits(OrderCount())
    assert store.record_event(order("a", "o-1", 40))
    assert store.record_event(order("a", "o-2", 2.5))
    assert store.record_event(order("a", "o-2", 2.5)) is False  # duplicate: not counted again
    assert store.record_event(EventRecord(contact_id="a", name="page_viewed"))
    assert store.traits_of("a") == {"orders": 2, "spend": 42.5}

    second = order("a", "o-2", 2.5)
    changes = store.unrouted_changes(second)
    assert sorted(
        (e.properties["trait"], e.properties["old"], e.properties["new"]) for e in changes
    ) == [
        ("orders", 1, 2),
        ("spend", 40, 42.5),
    ]
    assert all(e.timestamp == T0 for e in changes)
    store.mark_routed(changes)
    assert store.unrouted_changes(second) == []


class SlowOrderCount(OrderCount):
    """`OrderCount` taking a while between reading the rows and returning the new ones, so
    that concurrent events of one contact are all between their read and their write."""

    def apply(
        self,
        event: EventRecord,
        contact: Callable[[], ContactRecord],
        rows: Mapping[str, TraitRow],
    ) -> dict[str, TraitRow]:
        time.sleep(0.05)
        return super().apply(event, contact, rows)


def test_concurrent_first_events_of_an_existing_contact_are_all_counted(store: Store) -> None:
    # The contact exists but has no trait rows yet: there is no row to lock, so the contact's
    # events must serialise some other way (with and without a message id: both event paths).
    store.upsert_contact(ContactRecord(id="a"))
    store.use_traits(SlowOrderCount())
    barrier = threading.Barrier(8)

    def record(n: int) -> bool:
        event = order("a", f"o-{n}", n)
        if n % 2:
            event = event.model_copy(update={"message_id": None})
        barrier.wait(timeout=30)
        return store.record_event(event)

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(record, range(8))) == [True] * 8
    assert store.traits_of("a") == {"orders": 8, "spend": sum(range(8))}


def test_record_history_stores_a_batch_routed_with_its_trait_updates(store: Store) -> None:
    store.use_traits(OrderCount())
    batch = [order("h1", "o-1", 10, 300), order("h1", "o-2", 5, 200), order("h2", "o-3", 7, 100)]
    assert store.record_history(batch) == 3
    assert store.record_history([*batch, order("h2", "o-4", 1, 50)]) == 1
    assert store.traits_of("h1") == {"orders": 2, "spend": 15}
    assert store.traits_of("h2") == {"orders": 2, "spend": 8}
    assert store.get_contact("h1") is not None  # created
    stored = store.recent_events("h1", limit=50)
    assert {e.name for e in stored} == {"order_placed", "trait_changed"}
    assert all(e.routed_at is not None for e in stored)


def test_erasure_deletes_traits(store: Store) -> None:
    store.upsert_contact(ContactRecord(id="a"))
    store.set_traits("a", {"tier": "gold"}, cause="test")
    store.delete_contact("a")
    assert store.traits_of("a") == {}
    assert store.trait_value_counts("tier") == {}
