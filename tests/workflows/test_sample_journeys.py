"""Win-back, VIP event and feedback journeys through their main paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from runtime.simulator import ScheduledEvent
from store.records import ContactRecord, EventRecord
from tests.workflows.conftest import START, Runner, at, contact, sample, sends


def lapsed(contact_id: str) -> ContactRecord:
    return contact(
        contact_id,
        attributes={
            "first_name": contact_id.title(),
            "currency": "EUR",
            "last_order_at": (START - timedelta(days=75)).isoformat(),
            "rfm_segment": "at_risk",  # the win_back segment (RFM needs the whole customer base)
        },
    )


def spent(contact_id: str, *totals: float) -> list[EventRecord]:
    """Past orders: their totals make the contact's `lifetime_spend` trait."""
    return [
        EventRecord(
            contact_id=contact_id,
            name="order_placed",
            properties={"order_id": f"o-{n}", "total": total},
            timestamp=START - timedelta(days=75 + 30 * n),
            message_id=f"o-{n}",
        )
        for n, total in enumerate(totals)
    ]


async def test_win_back_gives_high_value_customers_the_bigger_offer(run: Runner) -> None:
    bruno = lapsed("bruno")
    result = await run(sample("win_back"), bruno, [], history=spent("bruno", 640.5, 600))
    assert sends(result)[0] == ("vip_offer", "email", "sent")
    offer = next(e for e in result.timeline if e.type == "send")
    assert offer.body is not None and "25%" in offer.body
    assert "brewed €1,240.50 worth" in offer.body


async def test_win_back_reads_lifetime_spend_from_orders_not_an_attribute(run: Runner) -> None:
    # An external lifetime_value attribute no longer decides: the trait (256.90) does.
    bruno = lapsed("bruno")
    bruno = bruno.model_copy(update={"attributes": {**bruno.attributes, "lifetime_value": 1240.5}})
    result = await run(sample("win_back"), bruno, [], history=spent("bruno", 86.4, 92, 78.5))
    assert sends(result)[0] == ("offer", "email", "sent")


async def test_win_back_gives_others_the_standard_offer_then_a_last_sms(run: Runner) -> None:
    result = await run(sample("win_back"), lapsed("dana"), [], history=spent("dana", 180))
    assert sends(result) == [("offer", "email", "sent"), ("last_chance", "sms", "sent")]
    assert result.outcome == "completed"
    updates = [e.result for e in result.timeline if e.type == "update"]
    assert updates == ["churn_risk"]


async def test_win_back_converts_on_an_order(run: Runner) -> None:
    result = await run(
        sample("win_back"),
        lapsed("dana"),
        [at("2d", "order_placed", order_id="o-9")],
        history=spent("dana", 180),
    )
    assert result.outcome == "converted"
    assert sends(result) == [("offer", "email", "sent")]


VIP_START = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


async def test_vip_rsvp_gets_confirmation_reminder_the_day_before_and_follow_up(
    run: Runner,
) -> None:
    chen = contact(
        "chen",
        timezone="Europe/London",
        locale="en_GB",
        attributes={"first_name": "Chen", "vip": True},
    )
    result = await run(
        sample("vip_event"),
        chen,
        [at("1h", "event_rsvp", attending=True)],
        start=VIP_START,
    )
    assert sends(result) == [
        ("invitation", "email", "sent"),
        ("confirmation", "email", "sent"),
        ("reminder", "sms", "sent"),
        ("follow_up", "email", "sent"),
    ]
    # The evening is ten days after the broadcast (19:00): the reminder goes the day before.
    reminder = next(e for e in result.timeline if e.step == "reminder")
    assert reminder.at.date() == datetime(2026, 12, 10).date()
    assert result.outcome == "completed"


async def test_vip_run_after_any_date_invites_to_an_evening_ten_days_ahead(run: Runner) -> None:
    """The sample once named a fixed date (12 December 2026): run after it, the invitation
    named a past evening. Its evening is now relative to the broadcast, whenever that is."""
    chen = contact("chen", timezone="Europe/London", attributes={"first_name": "Chen", "vip": True})
    broadcast = datetime(2027, 3, 1, 17, 0, tzinfo=UTC)
    result = await run(
        sample("vip_event"), chen, [at("1h", "event_rsvp", attending=True)], start=broadcast
    )
    invitation = next(e for e in result.timeline if e.step == "invitation")
    assert invitation.body is not None
    assert "When Thursday, March 11, 2027, 7:00\u202fPM\n" in invitation.body
    reminder = next(e for e in result.timeline if e.step == "reminder")
    assert reminder.at.date() == datetime(2027, 3, 10).date()


async def test_vip_without_rsvp_is_marked_and_gets_nothing_more(run: Runner) -> None:
    chen = contact("chen", attributes={"first_name": "Chen", "vip": True})
    result = await run(sample("vip_event"), chen, [], start=VIP_START)
    assert sends(result) == [("invitation", "email", "sent")]
    timeout = next(e for e in result.timeline if e.type == "wait_for")
    assert timeout.result == "timeout"
    assert [e.result for e in result.timeline if e.type == "update"] == ["vip_event_invite_ignored"]


async def test_vip_declining_does_not_count_as_an_rsvp(run: Runner) -> None:
    chen = contact("chen", attributes={"first_name": "Chen", "vip": True})
    result = await run(
        sample("vip_event"), chen, [at("1h", "event_rsvp", attending=False)], start=VIP_START
    )
    assert sends(result) == [("invitation", "email", "sent")]


def delivered(order: str) -> ScheduledEvent:
    return at("1m", "order_delivered", order_id=order)


async def test_feedback_detractor_gets_an_apology_and_staff_are_alerted(run: Runner) -> None:
    result = await run(
        sample("feedback_follow_up"),
        contact("dana"),
        [delivered("o-1"), at("2d", "nps_submitted", order_id="o-1", score=3)],
    )
    assert sends(result) == [
        ("survey_email", "email", "sent"),
        ("apology", "email", "sent"),
        ("staff_alert", "email", "sent"),
    ]
    alert = next(e for e in result.timeline if e.step == "staff_alert")
    assert alert.to == "care@rapport.example"


async def test_feedback_promoter_gets_the_review_ask(run: Runner) -> None:
    result = await run(
        sample("feedback_follow_up"),
        contact("dana"),
        [delivered("o-1"), at("2d", "nps_submitted", order_id="o-1", score=10)],
    )
    assert sends(result)[-1] == ("review_ask", "email", "sent")


async def test_feedback_ignores_a_score_for_another_order(run: Runner) -> None:
    result = await run(
        sample("feedback_follow_up"),
        contact("dana"),
        [delivered("o-1"), at("2d", "nps_submitted", order_id="o-2", score=3)],
    )
    assert sends(result) == [("survey_email", "email", "sent")]
    assert next(e for e in result.timeline if e.type == "wait_for").result == "timeout"


async def test_feedback_without_email_surveys_by_sms(run: Runner) -> None:
    eli = contact("eli", email=None)
    result = await run(
        sample("feedback_follow_up"),
        eli,
        [delivered("o-7"), at("2d", "nps_submitted", order_id="o-7", score=8)],
    )
    assert sends(result) == [("survey_sms", "sms", "sent"), ("thanks", "email", "skipped")]
