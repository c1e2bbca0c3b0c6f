"""The three journeys of `examples/` (issue 16, "done when"), written from the docs as a new user
would: they validate without a problem, and each of their simulations (contact files and events
files of the example project) ends as intended. Who does not enter the 60-day win-back is
tested in test_simulate_entry.py."""

from __future__ import annotations

import os
import subprocess
import sys

from runtime.simulator import SimulationResult, load_events_file
from store.records import ContactRecord
from tests.workflows.conftest import ROOT, START, Runner, compile_plan, sends
from workflows.contact_file import load_contact_file

EXAMPLES = ROOT / "examples"
RAPPORT = os.path.join(os.path.dirname(sys.executable), "rapport")


async def simulate_example(
    run: Runner, journey: str, contact: str, events: str | None = None, *, holdout: bool = False
) -> SimulationResult:
    """`rapport simulate JOURNEY --contact contacts/CONTACT.yaml [--events simulations/EVENTS.yaml]`
    in examples/, from START, on the session's time-skipping server."""
    plan = compile_plan(EXAMPLES / "journeys" / f"{journey}.yaml", EXAMPLES / "templates")
    found = load_contact_file(EXAMPLES / "contacts" / f"{contact}.yaml")
    scheduled = load_events_file(EXAMPLES / "simulations" / f"{events}.yaml") if events else []
    return await run(
        plan,
        ContactRecord(**found.profile()),
        scheduled,
        history=found.event_records(START),
        holdout=holdout,
    )


def test_the_examples_validate_without_errors_or_warnings() -> None:
    overrides = ("RAPPORT_JOURNEYS_DIR", "RAPPORT_TEMPLATES_DIR", "RAPPORT_CONTACTS_DIR")
    env = {key: value for key, value in os.environ.items() if key not in overrides}
    done = subprocess.run(
        [RAPPORT, "validate"], cwd=EXAMPLES, env=env, capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert [line.split(" (")[0] for line in lines[:-1]] == [
        "ok abandoned_cart",
        "ok post_purchase_review",
        "ok win_back_60d",
    ]
    assert lines[-1] == "3 journey(s) valid, 0 error(s), 0 warning(s)"


async def test_an_abandoned_cart_ordered_after_the_reminder_converts(run: Runner) -> None:
    result = await simulate_example(run, "abandoned_cart", "maya", "cart_ordered")
    assert (result.outcome, sends(result)) == ("converted", [("reminder", "email", "sent")])
    ended = result.timeline[-1]
    assert (ended.event, (ended.properties or {})["cart_id"]) == ("order_placed", "C-1")


async def test_the_cart_reminder_lists_every_item_of_the_cart(run: Runner) -> None:
    result = await simulate_example(run, "abandoned_cart", "maya", "cart_ordered")
    [reminder] = [entry for entry in result.timeline if entry.step == "reminder"]
    assert reminder.body is not None
    times = "\u00d7"  # the multiplication sign
    lines = f"- 2 {times} Ethiopia Yirgacheffe 250 g: $14.50\n- 1 {times} Hand grinder: $39.00"
    assert lines in reminder.body


async def test_an_order_of_another_cart_leaves_the_next_morning_sms(run: Runner) -> None:
    result = await simulate_example(run, "abandoned_cart", "maya", "cart_ignored")
    assert (result.outcome, sends(result)) == (
        "completed",
        [("reminder", "email", "sent"), ("nudge", "sms", "sent")],
    )
    [nudge] = [entry for entry in result.timeline if entry.step == "nudge"]
    assert result.local(nudge.at).strftime("%a %H:%M") == "Tue 10:00"  # maya's next morning


async def test_a_loyal_customer_who_rates_the_order_well_gets_the_perk(run: Runner) -> None:
    result = await simulate_example(run, "post_purchase_review", "omar", "review_five_stars")
    assert sends(result) == [("review_ask", "email", "sent"), ("loyal_perk", "email", "sent")]
    [update] = [entry for entry in result.timeline if entry.type == "update"]
    assert update.values == {"last_review_rating": 5}


async def test_a_newer_customer_who_rates_the_order_well_is_thanked(run: Runner) -> None:
    result = await simulate_example(run, "post_purchase_review", "sam", "review_five_stars")
    assert sends(result) == [("review_ask", "email", "sent"), ("thanks", "email", "sent")]


async def test_a_poor_rating_alerts_the_care_team(run: Runner) -> None:
    result = await simulate_example(run, "post_purchase_review", "sam", "review_one_star")
    assert sends(result) == [("review_ask", "email", "sent"), ("staff_alert", "email", "sent")]
    [alert] = [entry for entry in result.timeline if entry.step == "staff_alert"]
    assert (alert.to, alert.subject) == ("care@rapport.example", "[Review 1/5] sam, order #O-1002")


async def test_a_lapsed_customer_gets_the_comeback_offer_and_orders(run: Runner) -> None:
    result = await simulate_example(run, "win_back_60d", "lena", "win_back_orders")
    assert (result.outcome, sends(result)) == ("converted", [("percent_off", "email", "sent")])
    assert [entry.result for entry in result.timeline if entry.type == "split"] == ["percent_off"]


async def test_a_lapsed_customer_in_the_holdout_gets_no_offer(run: Runner) -> None:
    result = await simulate_example(run, "win_back_60d", "lena", holdout=True)
    assert (result.outcome, sends(result)) == ("completed", [("percent_off", "email", "skipped")])
