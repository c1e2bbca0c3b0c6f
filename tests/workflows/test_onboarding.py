"""The onboarding journey, driven through its paths on the time-skipping server."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from store.records import EventRecord
from tests.workflows.conftest import START, Runner, at, contact, sample, sends


async def test_without_an_order_sends_welcome_tips_then_the_sms_offer(run: Runner) -> None:
    result = await run(sample("onboarding"), contact(), [at("1m", "signed_up")])
    assert result.outcome == "completed"
    assert sends(result) == [
        ("welcome", "email", "sent"),
        ("tips", "email", "sent"),
        ("sms_offer", "sms", "sent"),
    ]
    welcome = next(e for e in result.timeline if e.step == "welcome")
    assert welcome.to == "alice@example.com"
    assert welcome.subject == "Welcome to Rapport Coffee Co., Alice"
    sms = next(e for e in result.timeline if e.step == "sms_offer")
    assert sms.body is not None and "WELCOME10" in sms.body and "Reply STOP" in sms.body
    # wait 2d, then wait_for times out after 5d: the SMS goes a week after sign-up.
    assert sms.at - welcome.at >= timedelta(days=7)
    assert sorted(p.suffix for p in result.outbox.iterdir()) == [".eml", ".eml", ".txt"]


async def test_an_order_while_waiting_converts_and_stops_the_messages(run: Runner) -> None:
    result = await run(
        sample("onboarding"), contact(), [at("1m", "signed_up"), at("3d", "order_placed")]
    )
    assert result.outcome == "converted"
    assert sends(result) == [("welcome", "email", "sent"), ("tips", "email", "sent")]


async def test_an_order_before_the_branch_skips_the_tips(run: Runner) -> None:
    history = [
        EventRecord(contact_id="alice", name="order_placed", timestamp=START - timedelta(days=1))
    ]
    result = await run(sample("onboarding"), contact(), [at("1m", "signed_up")], history=history)
    assert result.outcome == "completed"
    assert sends(result) == [("welcome", "email", "sent")]
    branch = next(e for e in result.timeline if e.type == "branch")
    assert branch.result == "done"


async def test_account_closed_exits_the_run(run: Runner) -> None:
    result = await run(
        sample("onboarding"), contact(), [at("1m", "signed_up"), at("1d", "account_closed")]
    )
    assert result.outcome == "exited"
    assert sends(result) == [("welcome", "email", "sent")]


async def test_an_enterprise_sign_up_does_not_enter(run: Runner) -> None:
    result = await run(sample("onboarding"), contact(), [at("1m", "signed_up", plan="enterprise")])
    assert result.outcome == "not_entered"
    assert result.timeline == []


async def test_the_holdout_group_gets_no_marketing_messages(run: Runner) -> None:
    result = await run(sample("onboarding"), contact(), [at("1m", "signed_up")], holdout=True)
    assert sends(result) == [
        ("welcome", "email", "sent"),  # transactional: the control group still gets it
        ("tips", "email", "skipped"),
        ("sms_offer", "sms", "skipped"),
    ]
    assert [p.suffix for p in result.outbox.iterdir()] == [".eml"]


async def test_quiet_hours_delay_the_sms_to_the_morning_in_the_contacts_zone(run: Runner) -> None:
    # Sign-up at 02:30 UTC = 21:30 in New York: the SMS a week later falls in quiet hours.
    start = START.replace(hour=2, minute=30)
    result = await run(sample("onboarding"), contact(), [at("1m", "signed_up")], start=start)
    delays = [e for e in result.timeline if e.type == "delay"]
    assert delays, result.timeline
    sms = next(e for e in result.timeline if e.step == "sms_offer" and e.type == "send")
    assert sms.status == "sent"
    local = sms.at.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (8, 0)
