"""`wait_for` with a list: the first event, or a condition over the contact (true at the start,
or once an identify changes the contact), decides the path; `since` counts events already
received. On the time-skipping server, through the simulator."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from runtime.simulator import ScheduledEvent, SimulationResult
from tests.workflows.conftest import START, Runner, at, compile_plan, contact
from workflows.plan import JourneyPlan

REPLY_OR_GOLD = """\
name: Reply or gold
trigger:
  event: order_delivered
steps:
  - id: reply_or_gold
    wait_for:
      - event: sms_replied
        next: replied
      - event: survey_submitted
        when: event.properties.score is defined
        next: surveyed
      - condition: contact.vip
        next: gold
    timeout: 3d
    on_timeout: silent
{since}  - id: replied
    exit: replied
  - id: surveyed
    branch:
      - when: steps.reply_or_gold.result == "event" and steps.reply_or_gold.branch == 2
        goto: scored
    else: silent
  - id: scored
    exit: surveyed
  - id: gold
    exit: gold
  - id: silent
    exit: silent
"""


def plan(tmp_path: Path, *, since: str | None = None, before: str = "") -> JourneyPlan:
    text = REPLY_OR_GOLD.replace("{since}", f"    since: {since}\n" if since else "")
    if before:
        text = text.replace("steps:\n", f"steps:\n{before}")
    path = tmp_path / "reply_or_gold.yaml"
    path.write_text(text, encoding="utf-8")
    return compile_plan(path)


def identify(after: str, **attributes: Any) -> ScheduledEvent:
    return ScheduledEvent.model_validate({"after": after, "identify": attributes})


def waited(result: SimulationResult) -> list[tuple[timedelta, str, str | None, str | None]]:
    """(time since the start, to the minute, result, event, reason) of each wait_for entry."""
    return [
        (
            timedelta(minutes=round((entry.at - START).total_seconds() / 60)),
            entry.result or "",
            entry.event,
            entry.reason,
        )
        for entry in result.timeline
        if entry.type == "wait_for"
    ]


DELIVERED = at("0m", "order_delivered", order_id="O-1")


async def test_the_first_event_to_arrive_decides_the_path(run: Runner, tmp_path: Path) -> None:
    result = await run(
        plan(tmp_path),
        contact(attributes={"vip": False}),
        [DELIVERED, at("2h", "survey_submitted", score=9), at("3h", "sms_replied", number=9)],
    )
    assert result.outcome == "surveyed"  # the branch read steps.ID = {result: event, branch: 2}
    assert waited(result) == [(timedelta(hours=2), "event", "survey_submitted", None)]


async def test_an_event_its_when_refuses_does_not_decide(run: Runner, tmp_path: Path) -> None:
    result = await run(
        plan(tmp_path),
        contact(attributes={"vip": False}),
        [DELIVERED, at("1h", "survey_submitted"), at("5h", "sms_replied", number=3)],
    )
    assert result.outcome == "replied"
    assert waited(result) == [(timedelta(hours=5), "event", "sms_replied", None)]


async def test_a_condition_true_at_the_start_decides_at_once(run: Runner, tmp_path: Path) -> None:
    result = await run(plan(tmp_path), contact(attributes={"vip": True}), [DELIVERED])
    assert result.outcome == "gold"
    assert waited(result) == [(timedelta(0), "condition", None, "contact.vip")]


async def test_a_condition_that_becomes_true_after_an_identify(run: Runner, tmp_path: Path) -> None:
    result = await run(
        plan(tmp_path),
        contact(attributes={"vip": False}),
        [DELIVERED, identify("1d", first_name="Al"), identify("2d", vip=True)],
    )
    assert result.outcome == "gold"
    assert waited(result) == [(timedelta(days=2), "condition", None, "contact.vip")]


async def test_nothing_happens_and_the_wait_times_out(run: Runner, tmp_path: Path) -> None:
    result = await run(plan(tmp_path), contact(attributes={"vip": False}), [DELIVERED])
    assert result.outcome == "silent"
    assert waited(result) == [(timedelta(days=3), "timeout", None, None)]


async def test_since_an_event_received_before_the_wait_decides_at_once(
    run: Runner, tmp_path: Path
) -> None:
    journey = plan(tmp_path, since="trigger", before="  - wait: 1d\n")
    result = await run(
        journey,
        contact(attributes={"vip": False}),
        [DELIVERED, at("2h", "sms_replied", number=7)],
    )
    assert result.outcome == "replied"
    assert waited(result) == [
        (
            timedelta(days=1),
            "event",
            "sms_replied",
            "received 2026-11-02T17:00:00+00:00, before the wait (since trigger)",
        )
    ]


async def test_since_a_window_that_ends_before_the_event_waits(run: Runner, tmp_path: Path) -> None:
    journey = plan(tmp_path, since="12h", before="  - wait: 1d\n")
    result = await run(
        journey,
        contact(attributes={"vip": False}),
        [DELIVERED, at("2h", "sms_replied", number=7)],
    )
    assert result.outcome == "silent"
    assert waited(result) == [(timedelta(days=4), "timeout", None, None)]


async def test_a_condition_on_a_trait_becomes_true_when_an_order_changes_it(
    run: Runner, tmp_path: Path
) -> None:
    path = tmp_path / "gold.yaml"
    path.write_text(
        REPLY_OR_GOLD.replace("{since}", "").replace("contact.vip", 'contact.tier == "gold"'),
        encoding="utf-8",
    )
    result = await run(
        compile_plan(path),
        contact(attributes={}),
        [DELIVERED, at("1d", "order_placed", order_id="O-2", total=600)],
    )
    assert result.outcome == "gold"
    assert waited(result) == [(timedelta(days=1), "condition", None, 'contact.tier == "gold"')]
