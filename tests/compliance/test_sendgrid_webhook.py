"""`POST /webhooks/sendgrid`: signed with a key pair made here, exactly as SendGrid signs."""

from __future__ import annotations

import time
import uuid

import httpx

from activities.journey_activities import JourneyActivities
from store import Store
from tests.compliance.conftest import People
from tests.compliance.helpers import (
    SendGridSigner,
    post_sendgrid,
    send,
    sendgrid_body,
    sendgrid_event,
)
from workflows.plan import JourneyPlan


async def test_a_signed_bounce_suppresses_the_address_and_the_next_marketing_email(
    client: httpx.AsyncClient,
    signer: SendGridSigner,
    store: Store,
    people: People,
    activities: JourneyActivities,
    plans: dict[str, JourneyPlan],
) -> None:
    onboarding = plans["onboarding"]
    ada = people.add("ada")
    first = await send(activities, onboarding, "tips", ada.id)
    assert first.status == "sent"
    entry = store.ledger.messages_for_contact(ada.id)[0]
    assert entry.provider_message_id

    bounce = sendgrid_event(
        "bounce",
        ada.email or "",
        type="bounce",
        reason="550 5.1.1 The email account that you tried to reach does not exist",
        sg_message_id=f"{entry.provider_message_id}.filter0001.16648.5515E0B88.0",
    )
    response = await post_sendgrid(client, signer, bounce)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "applied": 1, "duplicates": 0, "ignored": 0}

    assert store.is_suppressed("email", ada.email or "") == "bounce"
    bounced = store.ledger.get(entry.idempotency_key)
    assert bounced is not None and bounced.status == "bounced"
    assert "does not exist" in (bounced.error or "")
    [event] = store.recent_events(ada.id)
    assert event.name == "email_bounced"
    assert event.source == "sendgrid"
    assert event.properties["journey"] == "onboarding"
    assert event.properties["step"] == "tips"
    assert event.properties["message"] == entry.idempotency_key

    second = await send(activities, onboarding, "tips", ada.id)
    assert second.status == "suppressed"
    assert second.reason == "email address suppressed (bounce)"
    # Nothing reached the outbox for the second message.
    assert len(list(activities.settings.outbox_dir.glob("*.eml"))) == 1


async def test_unsigned_tampered_or_stale_requests_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
    signer: SendGridSigner,
    store: Store,
    people: People,
) -> None:
    bo = people.add("bo")
    body = sendgrid_body(sendgrid_event("spamreport", bo.email or ""))
    signed = signer.headers(body)

    unsigned = await client.post(
        "/webhooks/sendgrid", content=body, headers={"Content-Type": "application/json"}
    )
    assert unsigned.status_code == 401

    tampered_body = body.replace(b"spamreport", b"unsubscribe")
    tampered = await client.post("/webhooks/sendgrid", content=tampered_body, headers=signed)
    assert tampered.status_code == 403

    other_key = SendGridSigner()
    forged = await client.post("/webhooks/sendgrid", content=body, headers=other_key.headers(body))
    assert forged.status_code == 403

    hour_old = signer.headers(body, timestamp=int(time.time()) - 3600)
    stale = await client.post("/webhooks/sendgrid", content=body, headers=hour_old)
    assert stale.status_code == 403
    assert "5 minutes" in stale.json()["detail"]

    from_the_future = signer.headers(body, timestamp=int(time.time()) + 3600)
    future = await client.post("/webhooks/sendgrid", content=body, headers=from_the_future)
    assert future.status_code == 403

    garbled = {**signed, "X-Twilio-Email-Event-Webhook-Signature": "%%not base64%%"}
    assert (
        await client.post("/webhooks/sendgrid", content=body, headers=garbled)
    ).status_code == 403
    bad_stamp = {**signed, "X-Twilio-Email-Event-Webhook-Timestamp": "yesterday"}
    assert (
        await client.post("/webhooks/sendgrid", content=body, headers=bad_stamp)
    ).status_code == 403

    assert store.is_suppressed("email", bo.email or "") is None
    assert store.consent(bo.id, "email") == "subscribed"
    assert store.recent_events(bo.id) == []
    # The same request, correctly signed, does what it says.
    accepted = await client.post("/webhooks/sendgrid", content=body, headers=signed)
    assert accepted.status_code == 200
    assert store.is_suppressed("email", bo.email or "") == "spam_report"
    assert store.consent(bo.id, "email") == "unsubscribed"


async def test_a_duplicate_sg_event_id_has_one_effect(
    client: httpx.AsyncClient, signer: SendGridSigner, store: Store, people: People
) -> None:
    cy = people.add("cy")
    unsubscribe = sendgrid_event("unsubscribe", cy.email or "")
    first = await post_sendgrid(client, signer, unsubscribe)
    assert first.json()["applied"] == 1
    assert store.consent(cy.id, "email") == "unsubscribed"

    # Cy opts in again; a late redelivery of the same SendGrid event must not undo that.
    store.set_consent(cy.id, "email", "subscribed", "preferences_page")
    again = await post_sendgrid(client, signer, unsubscribe)
    assert again.status_code == 200
    assert again.json() == {"received": 1, "applied": 0, "duplicates": 1, "ignored": 0}
    assert store.consent(cy.id, "email") == "subscribed"
    assert [e.name for e in store.recent_events(cy.id)] == ["email_unsubscribed"]

    # Twice in one batch: one effect as well.
    click = sendgrid_event("click", cy.email or "", url="https://rapport.example/shop")
    both = await post_sendgrid(client, signer, click, click)
    assert both.json() == {"received": 2, "applied": 1, "duplicates": 1, "ignored": 0}
    clicks = [e for e in store.recent_events(cy.id) if e.name == "email_clicked"]
    assert len(clicks) == 1
    assert clicks[0].properties["url"] == "https://rapport.example/shop"


async def test_events_map_to_the_message_by_custom_args_and_update_its_status(
    client: httpx.AsyncClient,
    signer: SendGridSigner,
    store: Store,
    people: People,
    activities: JourneyActivities,
    plans: dict[str, JourneyPlan],
) -> None:
    dee = people.add("dee")
    await send(activities, plans["onboarding"], "tips", dee.id)
    entry = store.ledger.messages_for_contact(dee.id)[0]
    # custom_args come back as top-level fields of each event; sg_message_id is unknown here.
    args = {"rapport_message": entry.idempotency_key, "rapport_journey": "onboarding"}
    email = dee.email or ""
    statuses = []
    for kind, extra in (
        ("processed", {}),
        ("deferred", {"response": "400 try again later", "attempt": "1"}),
        ("delivered", {"response": "250 OK"}),
        ("open", {"sg_machine_open": False}),
        ("click", {"url": "https://rapport.example/guides/ratio"}),
        ("delivered", {}),  # late and out of order: the message stays clicked
    ):
        response = await post_sendgrid(client, signer, sendgrid_event(kind, email, **args, **extra))
        assert response.status_code == 200, response.text
        current = store.ledger.get(entry.idempotency_key)
        assert current is not None
        statuses.append(current.status)
    assert statuses == ["sent", "sent", "delivered", "opened", "clicked", "clicked"]
    names = [e.name for e in reversed(store.recent_events(dee.id))]
    assert names == [
        "email_processed",
        "email_deferred",
        "email_delivered",
        "email_opened",
        "email_clicked",
        "email_delivered",
    ]
    clicked = next(e for e in store.recent_events(dee.id) if e.name == "email_clicked")
    assert clicked.properties["url"] == "https://rapport.example/guides/ratio"
    assert clicked.properties["step"] == "tips"


async def test_drops_blocks_and_group_unsubscribes(
    client: httpx.AsyncClient, signer: SendGridSigner, store: Store, people: People
) -> None:
    invalid, blocked, bounced, grouped = (people.add(n) for n in ("inv", "blk", "bnc", "grp"))
    response = await post_sendgrid(
        client,
        signer,
        sendgrid_event("dropped", invalid.email or "", reason="Invalid"),
        sendgrid_event("bounce", blocked.email or "", type="blocked", reason="IP blocklisted"),
        sendgrid_event("dropped", bounced.email or "", reason="Bounced Address"),
        sendgrid_event("group_unsubscribe", grouped.email or "", asm_group_id=42),
        sendgrid_event("machine_learning_event", grouped.email or ""),
        {"event": "delivered"},  # no sg_event_id: cannot be deduplicated, so not applied
    )
    assert response.json() == {"received": 6, "applied": 4, "duplicates": 0, "ignored": 2}
    assert store.is_suppressed("email", invalid.email or "") == "bounce"
    assert store.is_suppressed("email", bounced.email or "") == "bounce"
    # A block is about the sending IP or content, not the address: not suppressed.
    assert store.is_suppressed("email", blocked.email or "") is None
    assert store.consent(grouped.id, "email") == "unsubscribed"
    assert store.is_suppressed("email", grouped.email or "") is None


async def test_a_bad_body_after_a_good_signature_is_a_422_and_no_key_disables_the_hook(
    client: httpx.AsyncClient, signer: SendGridSigner, settings: object, store: Store
) -> None:
    for body in (b"not json", b'{"event": "bounce"}', b"[1, 2]", b"\xff\xfe"):
        response = await client.post(
            "/webhooks/sendgrid", content=body, headers=signer.headers(body)
        )
        assert response.status_code == 422, body
    huge = b"[" + b" " * (9 * 1024 * 1024) + b"]"
    too_large = await client.post("/webhooks/sendgrid", content=huge, headers=signer.headers(huge))
    assert too_large.status_code == 413


async def test_a_replayed_signed_event_for_an_unknown_address_changes_nothing(
    client: httpx.AsyncClient, signer: SendGridSigner, store: Store
) -> None:
    """A captured signed request replayed inside its five minutes is recognised by its
    sg_event_id even when no contact has the address (no event row to tell by)."""
    address = f"stranger-{uuid.uuid4().hex[:8]}@example.com"
    body = sendgrid_body(sendgrid_event("bounce", address, reason="550 5.1.1 unknown user"))
    headers = signer.headers(body)
    first = await client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert first.json() == {"received": 1, "applied": 1, "duplicates": 0, "ignored": 0}
    assert store.is_suppressed("email", address) == "bounce"

    # The operator lifts the suppression (the mailbox exists after all); the replay must not
    # bring it back.
    assert store.unsuppress("email", address, "bounce") == 1
    replay = await client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert replay.status_code == 200
    assert replay.json() == {"received": 1, "applied": 0, "duplicates": 1, "ignored": 0}
    assert store.is_suppressed("email", address) is None
