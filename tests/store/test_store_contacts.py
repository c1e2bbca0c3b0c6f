"""Contacts: upsert merging, lookups, paging through all of them."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from store import ContactRecord, Store


def test_upsert_merges_attributes(store: Store) -> None:
    store.upsert_contact(ContactRecord(id="u1", attributes={"plan": "free", "first_name": "Ada"}))
    merged = store.upsert_contact(ContactRecord(id="u1", attributes={"plan": "pro", "orders": 2}))
    expected = {"plan": "pro", "first_name": "Ada", "orders": 2}
    assert merged.attributes == expected
    stored = store.get_contact("u1")
    assert stored is not None
    assert stored.attributes == expected


def test_upsert_keeps_fields_left_none(store: Store) -> None:
    first = store.upsert_contact(
        ContactRecord(id="u1", email="ada@example.com", timezone="Europe/London", locale="en-GB")
    )
    second = store.upsert_contact(ContactRecord(id="u1", phone="+447700900123"))
    assert second.email == "ada@example.com"
    assert second.timezone == "Europe/London"
    assert second.locale == "en-GB"
    assert second.phone == "+447700900123"
    assert second.created_at == first.created_at
    assert second.updated_at is not None and first.updated_at is not None
    assert second.updated_at >= first.updated_at


def test_get_contact_returns_none_when_missing(store: Store) -> None:
    assert store.get_contact("nobody") is None


def test_contact_exists_says_whether_the_store_has_the_contact(store: Store) -> None:
    store.upsert_contact(ContactRecord(id="u1"))
    assert store.contact_exists("u1") is True
    assert store.contact_exists("nobody") is False


def test_contact_timestamps_are_timezone_aware_utc(store: Store) -> None:
    created = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    store.upsert_contact(ContactRecord(id="u1", created_at=created))
    stored = store.get_contact("u1")
    assert stored is not None
    assert stored.created_at == created
    assert stored.created_at is not None and stored.created_at.tzinfo is UTC
    assert stored.updated_at is not None and stored.updated_at.tzinfo is UTC


def test_contacts_found_by_address(store: Store) -> None:
    store.upsert_contact(ContactRecord(id="u1", email="ada@example.com", phone="+14155550123"))
    store.upsert_contact(ContactRecord(id="u2", email="bob@example.com"))
    assert [c.id for c in store.contacts_by_address("email", "ada@example.com")] == ["u1"]
    assert [c.id for c in store.contacts_by_address("sms", "+14155550123")] == ["u1"]
    assert store.contacts_by_address("sms", "+14155550999") == []


def test_iter_contacts_pages_through_2500_contacts_with_bounded_page_size(store: Store) -> None:
    ids = [f"user-{n:05d}" for n in range(2500)]
    assert store.upsert_contacts(ContactRecord(id=i, attributes={"n": i}) for i in ids) == 2500

    page_size = 300
    limits: list[Any] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM contacts" in statement and statement.lstrip().upper().startswith("SELECT"):
            limits.append(params)

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        pages = list(store.iter_contact_pages(page_size))
        streamed = [c.id for c in store.iter_contacts(page_size)]
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)

    assert [len(p) for p in pages] == [300] * 8 + [100]
    assert [c.id for page in pages for c in page] == ids
    assert streamed == ids
    # Every query asked the database for at most one page: nothing loads all contacts.
    assert len(limits) == 2 * len(pages)
    for params in limits:
        values = params.values() if isinstance(params, dict) else params
        assert page_size in values


def test_iter_contacts_of_an_empty_store_yields_nothing(store: Store) -> None:
    assert list(store.iter_contacts(10)) == []


def test_concurrent_upserts_merge_every_attribute(store: Store) -> None:
    store.upsert_contact(ContactRecord(id="u1", attributes={"base": True}))
    barrier = threading.Barrier(8)

    def add(n: int) -> None:
        barrier.wait(timeout=30)
        store.upsert_contact(ContactRecord(id="u1", attributes={f"k{n}": n}))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(add, range(8)))
    stored = store.get_contact("u1")
    assert stored is not None
    assert stored.attributes == {"base": True, **{f"k{n}": n for n in range(8)}}


def test_a_batch_naming_a_contact_twice_applies_both_in_order(store: Store) -> None:
    store.upsert_contact(ContactRecord(id="u1", email="old@example.com", attributes={"a": 1}))
    count = store.upsert_contacts(
        [
            ContactRecord(id="u1", email="new@example.com", attributes={"b": 2}),
            ContactRecord(id="u2", locale="fr_FR"),
            ContactRecord(id="u1", timezone="Europe/Paris", attributes={"a": 3}),
        ]
    )
    one, two = store.get_contact("u1"), store.get_contact("u2")
    assert count == 3
    assert one is not None and two is not None
    assert (one.email, one.timezone, one.attributes) == (
        "new@example.com",
        "Europe/Paris",
        {"a": 3, "b": 2},
    )
    assert two.locale == "fr_FR"
