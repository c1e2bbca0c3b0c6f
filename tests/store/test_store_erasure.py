"""Erasure (GDPR): personal data goes, counts stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import String, Text, select

from store import ContactRecord, EventRecord, RunRecord, Store
from store.models import Base

EMAIL = "ada.lovelace@example.com"
PHONE = "+447700900123"


def populate(store: Store) -> None:
    store.upsert_contact(
        ContactRecord(
            id="u1",
            email=EMAIL,
            phone=PHONE,
            timezone="Europe/London",
            attributes={"first_name": "Ada", "last_name": "Lovelace"},
        )
    )
    store.record_event(
        EventRecord(contact_id="u1", name="order_placed", properties={"email": EMAIL})
    )
    store.set_consent("u1", "sms", "unsubscribed", "twilio:STOP")
    store.record_run(
        RunRecord(
            workflow_id="onboarding:u1",
            run_id="r1",
            contact_id="u1",
            journey="onboarding",
            version="v1",
            data={"email": EMAIL},
        )
    )
    for key, channel, recipient, status in [
        ("k1", "email", EMAIL, "delivered"),
        ("k2", "email", EMAIL, "opened"),
        ("k3", "sms", PHONE, "suppressed"),
    ]:
        store.ledger.claim(
            key,
            contact_id="u1",
            channel=channel,  # type: ignore[arg-type]
            journey="onboarding",
            recipient=recipient,
            subject=f"Hello Ada <{EMAIL}>",
            body=f"Dear Ada, {EMAIL} {PHONE}",
        )
        store.ledger.mark(key, status)  # type: ignore[arg-type]
    # Someone else's data must not be touched.
    store.upsert_contact(ContactRecord(id="u2", email="bob@example.com"))
    store.ledger.claim("other", contact_id="u2", channel="email", body="Hi Bob")


def test_erasure_removes_pii_but_keeps_ledger_counts(store: Store) -> None:
    populate(store)
    since = datetime.now(UTC) - timedelta(days=1)
    before = store.ledger.count_marketing_since("u1", since)

    result = store.delete_contact("u1")

    assert result.profile_deleted
    assert (result.events_deleted, result.consents_deleted) == (1, 1)
    assert (result.messages_redacted, result.runs_redacted) == (3, 1)
    assert store.get_contact("u1") is None
    assert store.recent_events("u1", 10) == []
    assert store.consents_for_contact("u1") == []
    messages = store.ledger.messages_for_contact("u1")
    assert sorted(m.status for m in messages) == ["delivered", "opened", "suppressed"]
    assert all(m.body is None and m.subject is None and m.recipient is None for m in messages)
    assert store.ledger.count_marketing_since("u1", since) == before == 2
    runs = store.runs_for_contact("u1")
    assert [(r.journey, r.data) for r in runs] == [("onboarding", {})]
    # The other contact is untouched.
    other = store.ledger.get("other")
    assert other is not None and other.body == "Hi Bob"
    assert store.get_contact("u2") is not None


def test_erased_contact_leaves_no_trace_of_its_address_in_any_table(store: Store) -> None:
    populate(store)
    store.delete_contact("u1")
    with store.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                for column in table.columns:
                    value = row[column.name]
                    if isinstance(column.type, String | Text) or isinstance(value, dict):
                        text = str(value)
                        assert EMAIL not in text, f"{table.name}.{column.name}"
                        assert PHONE not in text, f"{table.name}.{column.name}"


def test_erasing_an_unknown_contact_is_harmless(store: Store) -> None:
    result = store.delete_contact("nobody")
    assert not result.profile_deleted
    assert result.addresses_suppressed == 0
