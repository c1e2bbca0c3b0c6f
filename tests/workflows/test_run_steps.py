"""The journey workflow records the steps each run reaches (the funnel of `rapport report
journey`): before each wait, and when the run ends; a split's arm with it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from reports.journey import JourneyQuery, journey_report
from runtime.starter import ended_run
from tests.workflows.conftest import compile_plan, contact
from tests.workflows.harness import harness
from tests.workflows.test_guarantees import SEND_WAIT_SEND, SPLIT, project


async def test_steps_reached_are_recorded_before_the_wait_and_at_the_end(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, SEND_WAIT_SEND), tmp_path / "templates")
    async with harness(env, tmp_path) as h:
        handle = await h.start(plan, contact("ada"))
        await h.advance(timedelta(hours=1))
        query = JourneyQuery(journey="two_emails", step_order=plan.step_ids)
        waiting = journey_report(h.store, query)
        assert [(s["id"], s["reached"]) for s in waiting["steps"]] == [
            ("first", 1),
            (plan.step_ids[1], 1),
            ("second", 0),
        ]
        assert waiting["outcomes"]["running"] == 1
        await h.advance(timedelta(days=2))
        await ended_run(handle)
        ended = journey_report(h.store, query)
    assert [(s["id"], s["reached"], s["drop_off"]) for s in ended["steps"]] == [
        ("first", 1, 0),
        (plan.step_ids[1], 1, 0),
        ("second", 1, 1),
    ]
    assert ended["outcomes"]["completed"] == 1
    assert ended["messages"]["email"]["sent"] == 2


async def test_a_splits_arm_is_recorded_with_the_step(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, SPLIT, "split"), tmp_path / "templates")
    chosen: dict[str, int] = {}
    async with harness(env, tmp_path) as h:
        for n in range(6):
            result = await ended_run(await h.start(plan, contact(f"c{n}")))
            arm = next(e.result for e in result.timeline if e.type == "split") or ""
            chosen[arm] = chosen.get(arm, 0) + 1
        report = journey_report(h.store, JourneyQuery(journey="split"))
    assert set(chosen) == {"a", "b"}
    assert report["variants"] == {
        "pick": {
            arm: {"runs": count, "sent": count, "clicked": 0, "converted": 0}
            for arm, count in chosen.items()
        }
        | {"winner": None}
    }
    reached = {s["id"]: s["reached"] for s in report["steps"]}
    assert reached == {"pick": 6, "a": chosen["a"], "b": chosen["b"], "done": 6}
