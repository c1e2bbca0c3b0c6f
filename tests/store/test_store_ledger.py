"""The message ledger: idempotent claims (also under concurrency), statuses, the frequency cap."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import URL

from store import LedgerEntry, Store, UnknownMessageError
from store.models import Message


def claim(store: Store, key: str = "wf-1:welcome", **fields: object) -> LedgerEntry:
    values: dict[str, object] = {
        "contact_id": "u1",
        "channel": "email",
        "workflow_id": "wf-1",
        "step_id": "welcome",
        "journey": "onboarding",
        "template": "onboarding/welcome",
        "recipient": "ada@example.com",
    }
    values.update(fields)
    return store.ledger.claim(key, **values).entry  # type: ignore[arg-type]


def test_claim_is_idempotent_second_claim_returns_first_row_with_its_status(store: Store) -> None:
    first = claim(store, body="first attempt")
    assert first.status == "queued"
    store.ledger.mark_sent(first.idempotency_key, "sendgrid", "sg-1")

    second = claim(store, body="second attempt", template="other")
    assert second.id == first.id
    assert second.status == "sent"
    assert second.provider_message_id == "sg-1"
    assert second.body == "first attempt"
    assert second.template == "onboarding/welcome"
    assert len(store.ledger.messages_for_contact("u1")) == 1


def test_claim_tells_which_call_created_the_row(store: Store) -> None:
    fields = {"contact_id": "u1", "channel": "sms"}
    _, created = store.ledger.claim("k", **fields)  # type: ignore[arg-type]
    _, again = store.ledger.claim("k", **fields)  # type: ignore[arg-type]
    assert (created, again) == (True, False)


def test_concurrent_claims_from_threads_return_one_row(store: Store, store_url: URL) -> None:
    threads = 16
    barrier = threading.Barrier(threads)
    # Half the threads go through a second store (its own engine and pool), like another worker.
    with Store.open(store_url) as other:

        def attempt(n: int) -> tuple[LedgerEntry, bool]:
            target = store if n % 2 else other
            barrier.wait(timeout=30)
            return target.ledger.claim(
                "wf-race:step", contact_id="u1", channel="email", body=f"attempt {n}"
            )

        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(attempt, range(threads)))

    entries = [entry for entry, _ in results]
    assert sum(created for _, created in results) == 1
    assert len({e.id for e in entries}) == 1
    assert len({e.body for e in entries}) == 1
    with store.engine.connect() as conn:
        rows = conn.scalar(select(func.count()).where(Message.idempotency_key == "wf-race:step"))
    assert rows == 1


def test_concurrent_claim_sees_status_reached_by_the_first(store: Store) -> None:
    first = claim(store, key="k")
    store.ledger.mark(first.idempotency_key, "suppressed", reason="unsubscribed")
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = set(pool.map(lambda _: claim(store, key="k").status, range(8)))
    assert statuses == {"suppressed"}
    entry = store.ledger.get("k")
    assert entry is not None and entry.reason == "unsubscribed"


def test_claim_can_record_a_skip_directly(store: Store) -> None:
    entry = claim(store, key="k", status="skipped", reason="frequency cap")
    assert (entry.status, entry.reason, entry.sent_at) == ("skipped", "frequency cap", None)


def test_mark_sent_records_provider_and_content(store: Store) -> None:
    claim(store, key="k")
    entry = store.ledger.mark_sent("k", "sendgrid", "sg-42", body="<p>Hi</p>", subject="Welcome")
    assert entry.status == "sent"
    assert (entry.provider, entry.provider_message_id) == ("sendgrid", "sg-42")
    assert (entry.subject, entry.body) == ("Welcome", "<p>Hi</p>")
    assert entry.sent_at is not None and entry.sent_at.tzinfo is UTC


def test_status_never_moves_back_along_the_delivery_progress(store: Store) -> None:
    claim(store, key="k")
    store.ledger.mark_sent("k", "sendgrid", "sg-1")
    assert store.ledger.mark("k", "opened").status == "opened"
    assert store.ledger.mark("k", "delivered").status == "opened"
    assert store.ledger.mark_sent("k", "sendgrid", "sg-1").status == "opened"
    assert store.ledger.mark("k", "clicked").status == "clicked"
    assert store.ledger.mark("k", "bounced", reason="mailbox full").status == "bounced"


def test_failure_is_recorded_with_its_error(store: Store) -> None:
    claim(store, key="k")
    entry = store.ledger.mark("k", "failed", error="400 Bad Request: invalid from address")
    assert entry.status == "failed"
    assert entry.error == "400 Bad Request: invalid from address"


def test_marking_an_unknown_key_raises(store: Store) -> None:
    with pytest.raises(UnknownMessageError):
        store.ledger.mark("missing", "sent")
    with pytest.raises(UnknownMessageError):
        store.ledger.mark_sent("missing", "twilio", "SM1")
    assert store.ledger.get("missing") is None


def test_claim_rejects_values_outside_the_vocabulary(store: Store) -> None:
    with pytest.raises(ValueError, match="channel must be one of email, sms; got 'push'"):
        claim(store, key="k", channel="push")
    with pytest.raises(ValueError, match="status must be one of"):
        store.ledger.mark("k", "lost")  # type: ignore[arg-type]


def test_get_by_provider_id_matches_exact_and_sendgrid_event_ids(store: Store) -> None:
    claim(store, key="k1")
    store.ledger.mark_sent("k1", "sendgrid", "14c5d75ce93")
    claim(store, key="k2", channel="sms", recipient="+14155550123")
    store.ledger.mark_sent("k2", "twilio", "SM0123456789abcdef")

    exact = store.ledger.get_by_provider_id("14c5d75ce93")
    webhook = store.ledger.get_by_provider_id("14c5d75ce93.filter0001.16648.5515E0B88.0")
    sms = store.ledger.get_by_provider_id("SM0123456789abcdef")
    assert exact is not None and exact.idempotency_key == "k1"
    assert webhook is not None and webhook.idempotency_key == "k1"
    assert sms is not None and sms.idempotency_key == "k2"
    assert store.ledger.get_by_provider_id("unknown.filter") is None


def test_count_marketing_since_counts_only_marketing_messages_that_went_out(store: Store) -> None:
    since = datetime.now(UTC) - timedelta(days=7)
    for n, (category, status) in enumerate(
        [
            ("marketing", "sent"),
            ("marketing", "delivered"),
            ("marketing", "opened"),
            ("marketing", "clicked"),
            ("marketing", "queued"),
            ("marketing", "failed"),
            ("marketing", "suppressed"),
            ("marketing", "skipped"),
            ("marketing", "bounced"),
            ("transactional", "sent"),
        ]
    ):
        key = f"k{n}"
        claim(store, key=key, category=category)
        if status != "queued":
            store.ledger.mark(key, status)  # type: ignore[arg-type]
    claim(store, key="other-contact", contact_id="u2")
    store.ledger.mark("other-contact", "sent")
    claim(store, key="sms", channel="sms")
    store.ledger.mark("sms", "delivered")

    assert store.ledger.count_marketing_since("u1", since) == 5
    assert store.ledger.count_marketing_since("u1", since, channel="email") == 4
    assert store.ledger.count_marketing_since("u1", since, channel="sms") == 1
    assert store.ledger.count_marketing_since("u1", datetime.now(UTC) + timedelta(minutes=1)) == 0


def test_messages_for_contact_newest_first(store: Store) -> None:
    for key in ("a", "b", "c"):
        claim(store, key=key)
    assert [m.idempotency_key for m in store.ledger.messages_for_contact("u1")] == ["c", "b", "a"]
    assert [m.idempotency_key for m in store.ledger.messages_for_contact("u1", limit=1)] == ["c"]


def test_two_journeys_racing_for_the_last_capped_slot_send_one_message(
    store: Store, store_url: URL
) -> None:
    since = datetime.now(UTC) - timedelta(days=7)
    claim(store, "earlier", category="marketing")
    store.ledger.mark_sent("earlier", "sendgrid", "sg-0")
    keys = [f"journey-{n}:offer" for n in range(12)]
    for key in keys:
        claim(store, key, category="marketing")
    barrier = threading.Barrier(len(keys))
    # Half the hand-overs go through a second store (its own engine), like another worker.
    with Store.open(store_url) as other:

        def hand_over(n: int) -> bool:
            target = store if n % 2 else other
            barrier.wait(timeout=30)
            return target.ledger.hand_over(keys[n], "sendgrid", cap=(2, since))

        with ThreadPoolExecutor(max_workers=len(keys)) as pool:
            taken = list(pool.map(hand_over, range(len(keys))))
    assert taken.count(True) == 1  # 2 per week: one already went, one slot left


def test_a_transactional_hand_over_ignores_the_cap(store: Store) -> None:
    claim(store, "receipt", category="transactional")
    assert store.ledger.hand_over("receipt", "sendgrid") is True
    assert store.ledger.get("receipt").provider == "sendgrid"  # type: ignore[union-attr]
