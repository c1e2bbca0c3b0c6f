"""`goal: {event, within}`: an attribution window. A goal event inside it converts the run; one
after it does not, the run goes on to its end unconverted, and the journey report agrees."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from reports.journey import JourneyQuery, journey_report
from runtime.starter import ended_run
from tests.workflows.conftest import Runner, at, compile_plan, contact
from tests.workflows.harness import harness
from tests.workflows.test_guarantees import project
from workflows.contracts import EventPayload

GOAL_WITHIN = """\
name: Converted if they order within 14 days
trigger: manual
goal: {event: order_placed, within: 14d}
steps:
  - id: hello
    send: email
    template: onboarding/welcome
    category: transactional
  - wait: 30d
  - exit: completed
"""


async def test_a_goal_inside_the_window_converts(run: Runner, tmp_path: Path) -> None:
    plan = compile_plan(project(tmp_path, GOAL_WITHIN, "window"), tmp_path / "templates")
    result = await run(plan, contact("ada"), [at("13d", "order_placed")], until=timedelta(days=40))
    assert result.outcome == "converted"


async def test_a_goal_after_the_window_does_not_convert(run: Runner, tmp_path: Path) -> None:
    plan = compile_plan(project(tmp_path, GOAL_WITHIN, "window"), tmp_path / "templates")
    result = await run(plan, contact("ada"), [at("15d", "order_placed")], until=timedelta(days=40))
    assert result.outcome == "completed"
    late = [e for e in result.timeline if e.type == "goal_late"]
    assert [(e.event, e.reason) for e in late] == [
        ("order_placed", "goal after its attribution window (2w)")
    ]


async def test_the_report_counts_a_late_goal_as_unconverted(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, GOAL_WITHIN, "window"), tmp_path / "templates")
    async with harness(env, tmp_path) as h:
        handle = await h.start(plan, contact("ada"))
        await h.advance(timedelta(days=15))
        order = EventPayload(id="o-1", name="order_placed", timestamp=await h.now())
        await handle.signal("event", order)
        result = await ended_run(handle)
        report = journey_report(h.store, JourneyQuery(journey="window"))
    assert result.outcome == "completed"
    assert report["outcomes"]["converted"] == 0
    assert report["outcomes"]["completed"] == 1
