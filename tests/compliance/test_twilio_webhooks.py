"""`/webhooks/twilio/status` and `/inbound`, signed with Twilio's own `RequestValidator`."""

from __future__ import annotations

import uuid

import httpx

from activities.journey_activities import JourneyActivities
from store import Store
from tests.compliance.conftest import People
from tests.compliance.helpers import (
    TWILIO_TOKEN,
    inbound,
    post_twilio,
    send,
    twilio_signature,
)
from workflows.plan import JourneyPlan

INBOUND = "/webhooks/twilio/inbound"
STATUS = "/webhooks/twilio/status"
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


async def test_stop_then_a_marketing_sms_is_suppressed_and_start_restores(
    client: httpx.AsyncClient,
    store: Store,
    people: People,
    activities: JourneyActivities,
    plans: dict[str, JourneyPlan],
) -> None:
    onboarding = plans["onboarding"]
    eve = people.add("eve")
    phone = eve.phone or ""
    assert (await send(activities, onboarding, "sms_offer", eve.id)).status == "sent"

    stop = await post_twilio(client, INBOUND, inbound(phone, "Stop"))
    assert stop.status_code == 200
    assert stop.headers["content-type"].startswith("application/xml")
    assert stop.text == EMPTY  # Twilio confirms opt-outs itself
    assert store.consent(eve.id, "sms") == "unsubscribed"
    assert store.is_suppressed("sms", phone) == "stop"
    assert store.recent_events(eve.id)[0].name == "sms_unsubscribed"

    blocked = await send(activities, onboarding, "sms_offer", eve.id)
    assert blocked.status == "suppressed"
    assert blocked.reason == "sms address suppressed (stop)"
    # Email is another channel: still allowed.
    assert (await send(activities, onboarding, "tips", eve.id)).status == "sent"

    start = await post_twilio(client, INBOUND, inbound(phone, "START"))
    assert start.status_code == 200
    assert store.consent(eve.id, "sms") == "subscribed"
    assert store.is_suppressed("sms", phone) is None
    assert (await send(activities, onboarding, "sms_offer", eve.id)).status == "sent"


async def test_every_opt_out_keyword_and_yes_only_after_an_opt_out(
    client: httpx.AsyncClient, store: Store, people: People
) -> None:
    for word in ("STOP", "stopall", "Unsubscribe", "cancel", "END", "quit", " stop! "):
        person = people.add("kw")
        response = await post_twilio(client, INBOUND, inbound(person.phone or "", word))
        assert response.status_code == 200
        assert store.consent(person.id, "sms") == "unsubscribed", word
    # YES from a subscribed contact is an ordinary answer, not an opt-in keyword...
    fay = people.add("fay")
    await post_twilio(client, INBOUND, inbound(fay.phone or "", "yes"))
    assert [e.name for e in store.recent_events(fay.id)] == ["sms_replied"]
    # ...and after STOP it opts back in.
    await post_twilio(client, INBOUND, inbound(fay.phone or "", "STOP"))
    await post_twilio(client, INBOUND, inbound(fay.phone or "", "Yes"))
    assert store.consent(fay.id, "sms") == "subscribed"
    assert store.is_suppressed("sms", fay.phone or "") is None
    # A sentence with STOP in it is not a keyword.
    await post_twilio(client, INBOUND, inbound(fay.phone or "", "don't stop the deals"))
    assert store.consent(fay.id, "sms") == "subscribed"


async def test_help_answers_with_the_configured_text_in_twiml(
    client: httpx.AsyncClient, people: People, store: Store
) -> None:
    gus = people.add("gus")
    response = await post_twilio(client, INBOUND, inbound(gus.phone or "", "HELP"))
    assert response.status_code == 200
    assert response.text.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Message>')
    assert "Reply STOP to opt out" in response.text
    assert "Rapport Coffee Co." in response.text
    assert store.consent(gus.id, "sms") == "subscribed"


async def test_a_reply_is_an_sms_replied_event_with_its_number_tied_to_the_last_sms(
    client: httpx.AsyncClient,
    store: Store,
    people: People,
    activities: JourneyActivities,
    plans: dict[str, JourneyPlan],
) -> None:
    hal = people.add("hal", email=None)
    await send(activities, plans["onboarding"], "sms_offer", hal.id)
    sent = store.ledger.messages_for_contact(hal.id)[0]
    # No journey listens for sms_replied in this app's plans except feedback_follow_up, whose
    # runs need Temporal; the reply is stored either way, and 503 asks Twilio to retry.
    params = inbound(hal.phone or "", " 9 ")
    response = await post_twilio(client, INBOUND, params)
    assert response.status_code == 503
    [reply] = store.recent_events(hal.id)
    assert reply.name == "sms_replied"
    assert reply.source == "twilio"
    assert reply.message_id == params["MessageSid"]
    assert reply.properties["text"] == "9"
    assert reply.properties["number"] == 9
    assert reply.properties["message"] == sent.idempotency_key
    assert reply.properties["step"] == "sms_offer"
    assert reply.properties["journey"] == "onboarding"
    assert store.event_routed(hal.id, "twilio", params["MessageSid"]) is False

    words = inbound(hal.phone or "", "Loved the Ethiopian roast")
    await post_twilio(client, INBOUND, words)
    latest = store.recent_events(hal.id)[0]
    assert latest.properties["text"] == "Loved the Ethiopian roast"
    assert "number" not in latest.properties


async def test_status_callbacks_update_the_ledger(
    client: httpx.AsyncClient,
    store: Store,
    people: People,
    activities: JourneyActivities,
    plans: dict[str, JourneyPlan],
) -> None:
    ivy, jo = people.add("ivy"), people.add("jo")
    await send(activities, plans["onboarding"], "sms_offer", ivy.id)
    await send(activities, plans["onboarding"], "sms_offer", jo.id)
    ivy_sms = store.ledger.messages_for_contact(ivy.id)[0]
    jo_sms = store.ledger.messages_for_contact(jo.id)[0]

    def callback(sid: str | None, status: str, **extra: str) -> dict[str, str]:
        return {
            "MessageSid": sid or "",
            "MessageStatus": status,
            "AccountSid": "AC" + "0" * 32,
            "From": "+15005550006",
            **extra,
        }

    for status in ("queued", "sent", "delivered", "sent"):
        response = await post_twilio(client, STATUS, callback(ivy_sms.provider_message_id, status))
        assert response.status_code == 200
    delivered = store.ledger.get(ivy_sms.idempotency_key)
    assert delivered is not None and delivered.status == "delivered"
    assert [e.name for e in store.recent_events(ivy.id)] == ["sms_delivered"]

    failed = callback(jo_sms.provider_message_id, "undelivered", ErrorCode="30003")
    assert (await post_twilio(client, STATUS, failed)).status_code == 200
    row = store.ledger.get(jo_sms.idempotency_key)
    assert row is not None and row.status == "failed"
    assert row.error == "Twilio: undelivered (error 30003)"
    assert store.recent_events(jo.id)[0].properties["error_code"] == "30003"
    assert store.is_suppressed("sms", jo.phone or "") is None

    opted_out = callback(jo_sms.provider_message_id, "failed", ErrorCode="21610")
    assert (await post_twilio(client, STATUS, opted_out)).status_code == 200
    assert store.is_suppressed("sms", jo.phone or "") == "stop"
    assert store.consent(jo.id, "sms") == "unsubscribed"

    unknown = await post_twilio(client, STATUS, callback("SMnotours", "delivered"))
    assert unknown.status_code == 200
    assert unknown.json() == {"outcome": "ignored"}


async def test_unsigned_or_wrongly_signed_requests_are_refused_and_change_nothing(
    client: httpx.AsyncClient, store: Store, people: People
) -> None:
    kim = people.add("kim")
    params = inbound(kim.phone or "", "STOP")
    unsigned = await client.post(INBOUND, data=params)
    assert unsigned.status_code == 401
    wrong_token = await post_twilio(client, INBOUND, params, token="not-" + TWILIO_TOKEN)
    assert wrong_token.status_code == 403
    tampered = dict(params, From="+15550000000")
    signature = twilio_signature(INBOUND, params)
    assert (await post_twilio(client, INBOUND, tampered, signature=signature)).status_code == 403
    # Signed for another path (a status callback replayed at the inbound URL).
    other_path = twilio_signature(STATUS, params)
    assert (await post_twilio(client, INBOUND, params, signature=other_path)).status_code == 403
    garbage = await client.post(
        INBOUND,
        content=b"\xff\xfe%%%",
        headers={"X-Twilio-Signature": signature, "Content-Type": "text/plain"},
    )
    assert garbage.status_code == 403
    assert store.consent(kim.id, "sms") == "subscribed"
    assert store.is_suppressed("sms", kim.phone or "") is None
    assert store.recent_events(kim.id) == []
    huge = await client.post(
        INBOUND, content=b"Body=" + b"x" * 70_000, headers={"X-Twilio-Signature": signature}
    )
    assert huge.status_code == 413


async def test_a_replayed_start_never_lifts_a_later_stop(
    client: httpx.AsyncClient, store: Store, people: People
) -> None:
    """Twilio's signature has no timestamp: a captured START stays valid for ever. Applied once
    by its MessageSid, whoever has the number — no one, or a contact added since."""
    phone = "+1555" + str(uuid.uuid4().int)[:7]
    start = inbound(phone, "START")
    assert (await post_twilio(client, INBOUND, start)).status_code == 200  # nobody's number yet
    fay = people.add("fay", phone=phone)
    assert (await post_twilio(client, INBOUND, inbound(phone, "STOP"))).status_code == 200
    assert store.is_suppressed("sms", phone) == "stop"

    replay = await post_twilio(client, INBOUND, start)
    assert (replay.status_code, replay.text) == (200, EMPTY)
    assert store.is_suppressed("sms", phone) == "stop"
    assert store.consent(fay.id, "sms") == "unsubscribed"
    assert [e.name for e in store.recent_events(fay.id)] == ["sms_unsubscribed"]
