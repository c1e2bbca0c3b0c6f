"""Events: duplicates by message id ignored; counting and finding the latest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from store import EventRecord, Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_duplicate_event_message_id_ignored(store: Store) -> None:
    event = EventRecord(contact_id="u1", name="order_placed", message_id="m-1", timestamp=T0)
    assert store.record_event(event) is True
    again = event.model_copy(update={"properties": {"total": 99}})
    assert store.record_event(again) is False
    assert store.count_events("u1", "order_placed") == 1
    last = store.last_event("u1", "order_placed")
    assert last is not None and last.properties == {}


def test_same_message_id_for_another_contact_or_source_is_kept(store: Store) -> None:
    assert store.record_event(EventRecord(contact_id="u1", name="x", message_id="m-1"))
    assert store.record_event(EventRecord(contact_id="u2", name="x", message_id="m-1"))
    assert store.record_event(
        EventRecord(contact_id="u1", name="x", message_id="m-1", source="sendgrid")
    )
    assert store.count_events("u1", "x") == 2


def test_events_without_message_id_are_all_kept(store: Store) -> None:
    for _ in range(3):
        assert store.record_event(EventRecord(contact_id="u1", name="page_viewed"))
    assert store.count_events("u1", "page_viewed") == 3


def test_count_events_since_counts_from_that_instant(store: Store) -> None:
    for days in (10, 5, 1, 0):
        store.record_event(
            EventRecord(contact_id="u1", name="order_placed", timestamp=T0 - timedelta(days=days))
        )
    store.record_event(EventRecord(contact_id="u1", name="other", timestamp=T0))
    store.record_event(EventRecord(contact_id="u2", name="order_placed", timestamp=T0))

    assert store.count_events("u1", "order_placed") == 4
    assert store.count_events("u1", "order_placed", since=T0 - timedelta(days=5)) == 3
    assert store.count_events("u1", "order_placed", since=T0 + timedelta(seconds=1)) == 0
    # `since` in another zone means the same instant.
    plus2 = timezone(timedelta(hours=2))
    assert (
        store.count_events("u1", "order_placed", since=(T0 - timedelta(days=1)).astimezone(plus2))
        == 2
    )


def test_last_event_is_the_latest_by_timestamp_not_arrival(store: Store) -> None:
    store.record_event(EventRecord(contact_id="u1", name="x", timestamp=T0, properties={"n": 2}))
    store.record_event(
        EventRecord(
            contact_id="u1", name="x", timestamp=T0 - timedelta(hours=1), properties={"n": 1}
        )
    )
    last = store.last_event("u1", "x")
    assert last is not None
    assert last.properties == {"n": 2}
    assert last.timestamp == T0 and last.timestamp.tzinfo is UTC
    assert store.last_event("u1", "missing") is None


def test_recent_events_newest_first_and_limited(store: Store) -> None:
    for n in range(5):
        store.record_event(
            EventRecord(contact_id="u1", name=f"e{n}", timestamp=T0 + timedelta(minutes=n))
        )
    recent = store.recent_events("u1", limit=3)
    assert [e.name for e in recent] == ["e4", "e3", "e2"]


def test_event_properties_round_trip_as_json(store: Store) -> None:
    properties = {"total": 12.5, "items": [{"sku": "A", "qty": 2}], "gift": True, "note": None}
    store.record_event(EventRecord(contact_id="u1", name="order_placed", properties=properties))
    last = store.last_event("u1", "order_placed")
    assert last is not None and last.properties == properties
