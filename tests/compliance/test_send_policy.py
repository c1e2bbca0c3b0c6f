"""The send-time policy (SPEC §6, §11) through the real decision path: the workflow's quiet-hours
rule, then the send activity (ledger claim, `SendPolicy.check`, quiet hours with
`quiet_hours_end`, render, outbox), on a real SQLite store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activities.journey_activities import JourneyActivities
from activities.plans import save_plan
from providers.outbox import OutboxEmailProvider, OutboxSmsProvider
from store import ContactRecord, Store
from store.vocab import SUPPRESSION_REASONS
from tests.compliance.helpers import DAYTIME, inline_send_request, send_request
from tests.stack.helpers import project_settings
from workflows.contracts import SendOutcome
from workflows.durations import QuietHours
from workflows.plan import SMS_DEFAULT_QUIET_HOURS, JourneyPlan

ZONES = [
    None,  # no zone on file: UTC
    "UTC",
    "America/New_York",
    "America/St_Johns",
    "Europe/Paris",
    "Asia/Kolkata",
    "Australia/Sydney",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
]
WINDOWS = [None, "21:00-08:00", "22:30-07:15", "20:00-09:00", "12:00-13:30"]
CONSENT = st.sampled_from([None, "subscribed", "unsubscribed"])
SUPPRESSION = st.one_of(st.none(), st.sampled_from(SUPPRESSION_REASONS))


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, plans: dict[str, JourneyPlan]
) -> Iterator[tuple[JourneyActivities, JourneyPlan]]:
    root: Path = tmp_path_factory.mktemp("policy")
    config = project_settings(data_dir=root)
    with Store.open(config.database) as store:
        for plan in plans.values():  # runs read their plan from the store
            save_plan(store, plan)
        activities = JourneyActivities(
            store=store,
            email=OutboxEmailProvider(config.outbox_dir),
            sms=OutboxSmsProvider(config.outbox_dir),
            settings=config,
        )
        yield activities, plans["onboarding"]


async def decide_and_send(
    activities: JourneyActivities,
    plan: JourneyPlan,
    contact_id: str,
    *,
    channel: str,
    category: str,
    journey_quiet_hours: str | None,
    topic: str | None,
    now: datetime,
) -> tuple[datetime, str | None, SendOutcome]:
    """What `JourneyWorkflow._send` does: call the send activity with the journey's quiet
    hours (else 21:00-08:00 for SMS); when it answers `deferred`, call again at `retry_at`."""
    quiet = journey_quiet_hours or (SMS_DEFAULT_QUIET_HOURS if channel == "sms" else None)
    step = "tips" if channel == "email" else "sms_offer"
    # The form with the fields inline (older releases'), so the test can set them.
    request = inline_send_request(
        plan, step, contact_id, now=now, data={"topic": topic} if topic else None
    ).model_copy(update={"category": category, "quiet_hours": quiet})
    method = activities.send_email if channel == "email" else activities.send_sms
    send_at = now
    outcome = await method(request)
    if outcome.status == "deferred":
        assert outcome.retry_at is not None and outcome.retry_at > now
        send_at = outcome.retry_at
        context = request.context.model_copy(update={"now": send_at})
        outcome = await method(request.model_copy(update={"context": context}))
        assert outcome.status != "deferred"
    return send_at, quiet, outcome


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    zone=st.sampled_from(ZONES),
    consents=st.fixed_dictionaries({"email": CONSENT, "sms": CONSENT, "topic": CONSENT}),
    suppressions=st.fixed_dictionaries({"email": SUPPRESSION, "sms": SUPPRESSION}),
    channel=st.sampled_from(["email", "sms"]),
    category=st.sampled_from(["marketing", "marketing", "transactional"]),
    journey_quiet_hours=st.sampled_from(WINDOWS),
    topic=st.sampled_from([None, "offers"]),
    now=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
)
def test_no_marketing_to_opted_out_or_suppressed_addresses_and_no_sms_in_quiet_hours(
    world: tuple[JourneyActivities, JourneyPlan],
    zone: str | None,
    consents: dict[str, Any],
    suppressions: dict[str, Any],
    channel: str,
    category: str,
    journey_quiet_hours: str | None,
    topic: str | None,
    now: datetime,
) -> None:
    activities, plan = world
    store = activities.store
    unique = uuid.uuid4().hex[:10]
    contact = store.upsert_contact(
        ContactRecord(
            id=f"p-{unique}",
            email=f"p.{unique}@example.com",
            phone="+1555" + str(uuid.uuid4().int)[:7],
            timezone=zone,
            attributes={"first_name": "Pat"},
        )
    )
    address = {"email": contact.email or "", "sms": contact.phone or ""}
    for which in ("email", "sms"):
        if consents[which]:
            store.set_consent(contact.id, which, consents[which], "test")  # type: ignore[arg-type]
        if suppressions[which]:
            store.suppress(which, address[which], suppressions[which])  # type: ignore[arg-type]
    if consents["topic"]:
        store.set_consent(contact.id, channel, consents["topic"], "test", topic="offers")

    send_at, quiet, outcome = asyncio.run(
        decide_and_send(
            activities,
            plan,
            contact.id,
            channel=channel,
            category=category,
            journey_quiet_hours=journey_quiet_hours,
            topic=topic,
            now=now,
        )
    )

    marketing = category == "marketing"
    suppressed = suppressions[channel] is not None
    opted_out = marketing and (
        consents[channel] == "unsubscribed"
        or (topic is not None and consents["topic"] == "unsubscribed")
    )
    # The guarantees (SPEC §11)...
    if outcome.status == "sent":
        assert not suppressed, "sent to a suppressed address"
        assert not opted_out, "marketing sent to a contact who opted out"
        if marketing and quiet:
            local = send_at.astimezone(ZoneInfo(zone or "UTC"))
            assert not QuietHours.parse(quiet).contains(local.time()), f"sent at {local}"
    # ...and nothing else is blocked: the policy is exact, not merely cautious.
    expected = "suppressed" if suppressed or opted_out else "sent"
    assert outcome.status == expected, outcome.reason
    # Quiet hours delay, never drop, and never by more than a day.
    assert now <= send_at <= now + timedelta(days=1)
    assert outcome.to == address[channel]


async def test_the_frequency_cap_counts_marketing_across_journeys_not_transactional(
    tmp_path: Path, plans: dict[str, JourneyPlan]
) -> None:
    config = project_settings(data_dir=tmp_path, frequency_cap="2 per 7d")
    with Store.open(config.database) as store:
        for plan in plans.values():  # runs read their plan from the store
            save_plan(store, plan)
        activities = JourneyActivities(
            store=store,
            email=OutboxEmailProvider(config.outbox_dir),
            sms=OutboxSmsProvider(config.outbox_dir),
            settings=config,
        )
        store.upsert_contact(ContactRecord(id="cap", email="cap@example.com", phone="+15551230000"))

        async def go(journey: str, step: str, at: datetime, own_cap: bool = True) -> SendOutcome:
            request = send_request(plans[journey], step, "cap", now=at)
            if not own_cap:  # as if the journey set no `frequency_cap` (fields inline)
                inline = inline_send_request(plans[journey], step, "cap", now=at)
                request = inline.model_copy(update={"frequency_cap": None})
            channel = plans[journey].send_fields(step)["channel"]
            method = activities.send_email if channel == "email" else activities.send_sms
            return await method(request)

        day = timedelta(days=1)
        assert (await go("onboarding", "tips", DAYTIME, False)).status == "sent"
        assert (await go("onboarding", "welcome", DAYTIME, False)).status == "sent"
        assert (await go("onboarding", "sms_offer", DAYTIME + day, False)).status == "sent"
        # With no cap of its own the project's 2 per 7d applies, counting both channels.
        capped = await go("onboarding", "tips", DAYTIME + 2 * day, False)
        assert (capped.status, capped.reason) == ("skipped", "frequency cap reached (2 per 7d)")
        # Transactional messages are never capped.
        assert (await go("onboarding", "welcome", DAYTIME + 2 * day, False)).status == "sent"
        # Win-back's own cap (3 per 7d) counts onboarding's messages too: one more, then no.
        assert (await go("win_back", "offer", DAYTIME + 2 * day)).status == "sent"
        capped = await go("win_back", "vip_offer", DAYTIME + 3 * day)
        assert (capped.status, capped.reason) == ("skipped", "frequency cap reached (3 per 7d)")
        # A week on, the first two have left the window.
        assert (await go("win_back", "offer", DAYTIME + 8 * day)).status == "sent"
