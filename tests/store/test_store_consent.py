"""Consent per channel (and topic) and suppressions matched by address hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from store import ContactRecord, Store
from store.models import Suppression


def test_consent_defaults_to_subscribed(store: Store) -> None:
    assert store.consent("u1", "email") == "subscribed"
    assert store.consent("u1", "sms", topic="offers") == "subscribed"


def test_set_consent_is_per_channel_and_replaces_the_previous_choice(store: Store) -> None:
    store.set_consent("u1", "sms", "unsubscribed", "twilio:STOP")
    assert store.consent("u1", "sms") == "unsubscribed"
    assert store.consent("u1", "email") == "subscribed"
    record = store.set_consent("u1", "sms", "subscribed", "twilio:START")
    assert (record.status, record.source) == ("subscribed", "twilio:START")
    assert store.consent("u1", "sms") == "subscribed"
    assert len(store.consents_for_contact("u1")) == 1


def test_channel_wide_unsubscribe_wins_over_a_topic_subscription(store: Store) -> None:
    store.set_consent("u1", "email", "subscribed", "preferences", topic="news")
    store.set_consent("u1", "email", "unsubscribed", "preferences", topic="offers")
    assert store.consent("u1", "email", topic="news") == "subscribed"
    assert store.consent("u1", "email", topic="offers") == "unsubscribed"
    assert store.consent("u1", "email") == "subscribed"

    store.set_consent("u1", "email", "unsubscribed", "list-unsubscribe")
    assert store.consent("u1", "email", topic="news") == "unsubscribed"
    assert [(c.topic, c.status) for c in store.consents_for_contact("u1")] == [
        (None, "unsubscribed"),
        ("news", "subscribed"),
        ("offers", "unsubscribed"),
    ]


def test_older_consent_change_does_not_undo_a_newer_one(store: Store) -> None:
    now = datetime.now(UTC)
    store.set_consent("u1", "email", "unsubscribed", "link", at=now)
    late = store.set_consent("u1", "email", "subscribed", "import", at=now - timedelta(hours=1))
    assert (late.status, late.source) == ("unsubscribed", "link")
    assert store.consent("u1", "email") == "unsubscribed"


def test_set_consent_rejects_unknown_status(store: Store) -> None:
    with pytest.raises(ValueError, match="status must be one of subscribed, unsubscribed"):
        store.set_consent("u1", "email", "maybe", "api")  # type: ignore[arg-type]


def test_suppression_matches_normalised_address(store: Store) -> None:
    assert store.suppress("email", "Ada@Example.com", "bounce") is True
    assert store.suppress("email", "ada@example.com ", "bounce") is False
    assert store.is_suppressed("email", "ada@example.COM") == "bounce"
    assert store.is_suppressed("sms", "ada@example.com") is None
    store.suppress("sms", "+14155550123", "stop")
    assert store.is_suppressed("sms", "+1 (415) 555-0123") == "stop"
    assert store.is_suppressed("email", "bob@example.com") is None


def test_suppression_stores_the_address_as_given_and_its_hash(store: Store) -> None:
    store.suppress("email", "Ada@Example.com", "spam_report")
    with store.engine.connect() as conn:
        address, digest = conn.execute(select(Suppression.address, Suppression.address_hash)).one()
    assert address == "Ada@Example.com"
    assert len(digest) == 64 and "ada" not in digest


def test_suppression_by_hash_survives_erasure(store: Store) -> None:
    store.upsert_contact(ContactRecord(id="u1", email="ada@example.com", phone="+14155550123"))
    store.suppress("email", "ada@example.com", "bounce")

    result = store.delete_contact("u1")

    assert result.addresses_suppressed == 2
    assert store.is_suppressed("email", "ada@example.com") == "bounce"
    assert store.is_suppressed("sms", "+14155550123") == "erased"
    with store.engine.connect() as conn:
        addresses = conn.scalars(select(Suppression.address)).all()
    assert addresses and all(address is None for address in addresses)


def test_unsuppress_lifts_a_stop_but_never_an_erasure(store: Store) -> None:
    store.suppress("sms", "+14155550123", "stop")
    assert store.unsuppress("sms", "+14155550123") == 1
    assert store.is_suppressed("sms", "+14155550123") is None

    store.upsert_contact(ContactRecord(id="u1", phone="+14155550123"))
    store.delete_contact("u1")
    store.suppress("sms", "+14155550123", "stop")
    assert store.unsuppress("sms", "+14155550123") == 1
    assert store.is_suppressed("sms", "+14155550123") == "erased"
