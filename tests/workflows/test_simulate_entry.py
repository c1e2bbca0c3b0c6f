"""`simulate` enters a contact only as production would: a segment journey's segment and
audience evaluated as the tick does, an event journey's `when` and audience as the router does;
otherwise the outcome is `not_entered`, with the reason (issue 16 item 4)."""

from __future__ import annotations

from runtime.simulator import SimulationResult
from store.records import ContactRecord
from tests.workflows.conftest import ROOT, START, Runner, at, compile_plan, contact, sample, sends
from workflows.contact_file import load_contact_file

EXAMPLES = ROOT / "examples"
SEGMENT = (
    'count_events("order_placed") > 0 and days_since(last_event("order_placed").timestamp) > 60'
)


async def win_back_60d(run: Runner, name: str, **overrides: object) -> SimulationResult:
    """The examples' 60-day win-back for a contact file of examples/contacts, from START."""
    plan = compile_plan(EXAMPLES / "journeys" / "win_back_60d.yaml", EXAMPLES / "templates")
    found = load_contact_file(EXAMPLES / "contacts" / f"{name}.yaml")
    who = ContactRecord(**{**found.profile(), **overrides})
    return await run(plan, who, [], history=found.event_records(START))


async def test_a_contact_who_ordered_18_days_ago_is_not_won_back(run: Runner) -> None:
    result = await win_back_60d(run, "sam")
    assert (result.outcome, result.timeline) == ("not_entered", [])
    assert result.reason == (
        f"the segment is false: {SEGMENT} (at 2026-11-02T15:00:00+00:00: "
        "count_events('order_placed') = 2; "
        "last_event('order_placed') at 2026-10-15T15:00:00+00:00)"
    )


async def test_a_contact_who_never_ordered_is_not_won_back(run: Runner) -> None:
    result = await win_back_60d(run, "noor")
    assert result.outcome == "not_entered"
    assert result.reason == (
        f"the segment is false: {SEGMENT} (at 2026-11-02T15:00:00+00:00: "
        "count_events('order_placed') = 0; last_event('order_placed') is none)"
    )


async def test_a_contact_whose_last_order_is_75_days_old_is_won_back(run: Runner) -> None:
    result = await win_back_60d(run, "lena")
    assert result.reason is None
    assert sends(result)[0] == ("percent_off", "email", "sent")


async def test_a_segment_contact_outside_the_audience_does_not_enter(run: Runner) -> None:
    result = await win_back_60d(run, "lena", email=None)
    assert result.outcome == "not_entered"
    assert result.reason == (
        "the audience is false: contact.email is defined and contact.email "
        "(at 2026-11-02T15:00:00+00:00: contact.email is undefined)"
    )


async def test_a_trigger_event_from_a_contact_outside_the_audience_starts_nothing(
    run: Runner,
) -> None:
    result = await run(
        sample("onboarding"), contact("eli", email=None), [at("1m", "signed_up", plan="starter")]
    )
    assert result.outcome == "not_entered"
    assert result.reason == (
        "signed_up at 2026-11-02T15:01:00+00:00: the contact is not in the journey's audience "
        "(contact.email is defined and contact.email: contact.email is undefined)"
    )


async def test_an_event_journey_without_its_trigger_event_says_so(run: Runner) -> None:
    result = await run(sample("onboarding"), contact("alice"), [at("1d", "order_placed")])
    assert result.outcome == "not_entered"
    assert result.reason == "no signed_up event (the journey's trigger) in the events file"
