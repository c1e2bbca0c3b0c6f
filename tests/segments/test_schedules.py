"""`sync_schedules` on a real dev server: segment journeys become Temporal Schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import ScheduleActionStartWorkflow

from commands import list_runs
from runtime.schedules import (
    describe_schedule,
    latest_tick,
    listed_journeys,
    schedule_id,
    sync_schedules,
)
from tests.segments.conftest import Segments
from tests.stack.helpers import ROOT
from tests.waiting import eventually
from workflows.compiler import compile_journey
from workflows.plan import JourneyPlan
from workflows.segment_workflow import SegmentTickWorkflow, TickProgress


def onboarding() -> JourneyPlan:
    plan, _ = compile_journey(ROOT / "journeys" / "onboarding.yaml", ROOT / "templates")
    assert plan is not None
    return plan


async def test_sync_creates_keeps_and_updates_a_cron_schedule(segments: Segments) -> None:
    plan = segments.journey(schedule="0 9 * * *")
    plans = {plan.journey_id: plan, "onboarding": onboarding()}
    report = await sync_schedules(segments.client, plans, segments.queue)
    assert report.created == [plan.journey_id] and report.deleted == []
    description = await segments.client.get_schedule_handle(schedule_id(plan.journey_id)).describe()
    action = description.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "SegmentTickWorkflow" and action.task_queue == segments.queue
    assert list(description.schedule.spec.cron_expressions) or description.schedule.spec.calendars
    assert all(t.hour == 9 and t.minute == 0 for t in description.info.next_action_times)
    assert await describe_schedule(segments.client, "onboarding") is None  # an event journey

    again = await sync_schedules(segments.client, plans, segments.queue)
    assert again.unchanged == [plan.journey_id] and again.created == []

    edited = segments.journey('contact.tier == "platinum"', name=plan.journey_id)
    assert edited.version != plan.version
    report = await sync_schedules(segments.client, {edited.journey_id: edited}, segments.queue)
    change = report.change(edited.journey_id)
    assert change is not None and change.action == "updated"
    assert change.previous_version == plan.version and change.version == edited.version
    deployed = await describe_schedule(segments.client, edited.journey_id)
    assert deployed is not None and deployed.version == edited.version


async def test_paused_removed_and_broken_journeys(segments: Segments) -> None:
    kept = segments.journey()
    paused_in_store = segments.journey()
    removed = segments.journey()
    broken = segments.journey()
    everything = {p.journey_id: p for p in (kept, paused_in_store, removed, broken)}
    await sync_schedules(segments.client, everything, segments.queue)
    await eventually(lambda: _listed_all(segments, set(everything)), "the four schedules listed")

    paused_in_yaml = segments.journey(extra="status: paused", name=kept.journey_id)
    report = await sync_schedules(
        segments.client,
        {kept.journey_id: paused_in_yaml, paused_in_store.journey_id: paused_in_store},
        segments.queue,
        paused={paused_in_store.journey_id},
        keep={broken.journey_id},  # its file exists but does not compile now
    )
    assert sorted(report.deleted) == sorted(
        [kept.journey_id, paused_in_store.journey_id, removed.journey_id]
    )
    reasons = {c.journey: c.reason for c in report.changes if c.action == "deleted"}
    assert reasons[removed.journey_id] == "journey removed"
    assert reasons[kept.journey_id] == reasons[paused_in_store.journey_id] == "journey paused"
    assert await describe_schedule(segments.client, broken.journey_id) is not None
    for gone in (kept, paused_in_store, removed):
        assert await describe_schedule(segments.client, gone.journey_id) is None

    # Paused again next time: nothing to delete, reported as skipped.
    report = await sync_schedules(
        segments.client,
        {kept.journey_id: paused_in_yaml, broken.journey_id: broken},
        segments.queue,
    )
    assert report.skipped == [kept.journey_id] and report.unchanged == [broken.journey_id]


async def _listed_all(segments: Segments, journeys: set[str]) -> bool:
    return journeys <= await listed_journeys(segments.client, segments.queue)


async def test_another_task_queues_schedules_are_left_alone(segments: Segments) -> None:
    plan = segments.journey()
    await sync_schedules(segments.client, {plan.journey_id: plan}, "someone-else")
    report = await sync_schedules(segments.client, {}, segments.queue, known={plan.journey_id})
    assert report.deleted == []
    assert await describe_schedule(segments.client, plan.journey_id) is not None


async def test_an_at_in_the_past_is_not_scheduled(segments: Segments) -> None:
    plan = segments.journey(at="2020-01-01T09:00:00+00:00")
    report = await sync_schedules(segments.client, {plan.journey_id: plan}, segments.queue)
    change = report.change(plan.journey_id)
    assert change is not None and change.action == "skipped"
    assert change.reason == "at 2020-01-01T09:00:00+00:00 is in the past"


async def test_an_at_journey_fires_once_and_enrols_the_segment(segments: Segments) -> None:
    segments.contacts(6, tier=lambda n: "gold" if n < 2 else "silver")
    async with segments.worker():
        at, plan = await _arm_one_time_schedule(segments)
        deployed = await describe_schedule(segments.client, plan.journey_id)
        assert deployed is not None and deployed.next_action_times == [at]
        assert deployed.remaining_actions == 1

        async def fired() -> bool:
            now = await describe_schedule(segments.client, plan.journey_id)
            return now is not None and now.actions_taken == 1

        await eventually(fired, f"the one-time schedule of {plan.journey_id} to fire")
        result = await _last_tick(segments, plan)
        assert result.tick_at == at and result.enrolled == 2
        assert result.tick_id == f"segment-tick:{plan.journey_id}-{at:%Y-%m-%dT%H:%M:%SZ}"

        # Editing the journey after it fired updates the plan but never re-arms it.
        edited = segments.journey(at=at.isoformat(), extra="reentry: always", name=plan.journey_id)
        report = await sync_schedules(segments.client, {plan.journey_id: edited}, segments.queue)
        assert report.updated == [plan.journey_id]
        deployed = await describe_schedule(segments.client, plan.journey_id)
        assert deployed is not None and deployed.remaining_actions == 0
        assert deployed.next_action_times == []
        await eventually(lambda: _entered(segments, plan, 2), "2 runs entered")
    assert segments.entered(plan.journey_id) == {"c000": 1, "c001": 1}


async def test_a_scheduled_tick_run_twice_enrols_the_segment_once(segments: Segments) -> None:
    plan = segments.journey()
    segments.contacts(9, tier=lambda n: "gold" if n % 3 == 0 else "bronze")
    async with segments.worker():
        await sync_schedules(segments.client, {plan.journey_id: plan}, segments.queue)
        handle = segments.client.get_schedule_handle(schedule_id(plan.journey_id))
        results: list[TickProgress] = []
        for _ in range(2):
            await handle.trigger()

            async def done(expected: int = len(results) + 1) -> bool:
                description = await handle.describe()
                return len(description.info.recent_actions) >= expected and not (
                    description.info.running_actions
                )

            await eventually(done, f"tick {len(results) + 1} to finish")
            results.append(await _last_tick(segments, plan))
        await eventually(lambda: _entered(segments, plan, 3), "3 runs entered")
        assert await latest_tick(segments.client, plan.journey_id) == results[-1]
        # `rapport list --journey J` shows the same progress above the runs.
        states, shown = await list_runs._list(segments.settings, plan.journey_id, None, 100)
        assert shown == results[-1] and len(states) == 3
        assert ": 9 scanned, 3 matched, 0 enrolled, " in list_runs.describe_tick(shown)
    assert await latest_tick(segments.client, "no_such_journey") is None
    first, second = results
    assert first.enrolled == 3 and second.enrolled == 0 and second.matched == 3
    assert segments.entered(plan.journey_id) == {"c000": 1, "c003": 1, "c006": 1}


async def _arm_one_time_schedule(segments: Segments) -> tuple[datetime, JourneyPlan]:
    """An `at` journey a few seconds ahead, synced. On a machine so loaded that the sync took
    past that instant (reported as skipped: in the past), again further ahead."""
    for lead in (3, 10, 30):
        at = (datetime.now(UTC) + timedelta(seconds=lead)).replace(microsecond=0)
        plan = segments.journey(at=at.isoformat())
        report = await sync_schedules(segments.client, {plan.journey_id: plan}, segments.queue)
        if report.created == [plan.journey_id]:
            return at, plan
        change = report.change(plan.journey_id)
        assert change is not None and change.action == "skipped", change
        assert change.reason == f"at {at.isoformat()} is in the past"
    raise AssertionError("could not arm a one-time schedule 30 s ahead")


async def _entered(segments: Segments, plan: JourneyPlan, count: int) -> bool:
    return len(segments.runs(plan.journey_id)) >= count


async def _last_tick(segments: Segments, plan: JourneyPlan) -> TickProgress:
    description = await segments.client.get_schedule_handle(schedule_id(plan.journey_id)).describe()
    action: Any = description.info.recent_actions[-1].action
    handle = segments.client.get_workflow_handle_for(SegmentTickWorkflow.run, action.workflow_id)
    return await handle.result()


async def test_an_at_after_deployment_is_armed_when_first_deployed_and_then_kept(
    segments: Segments,
) -> None:
    """`at: 1h` (a sample that works whenever it is run): an hour after the schedule is
    created; syncing again, or editing the journey, keeps that instant."""
    plan = segments.journey(at="1h")
    deployed_from = datetime.now(UTC).replace(microsecond=0)
    report = await sync_schedules(segments.client, {plan.journey_id: plan}, segments.queue)
    assert report.created == [plan.journey_id]
    deployed = await describe_schedule(segments.client, plan.journey_id)
    assert deployed is not None and deployed.remaining_actions == 1
    [at] = deployed.next_action_times
    assert deployed_from + timedelta(hours=1) <= at <= datetime.now(UTC) + timedelta(hours=1)

    edited = segments.journey(at="1h", extra="reentry: always", name=plan.journey_id)
    report = await sync_schedules(segments.client, {plan.journey_id: edited}, segments.queue)
    assert report.updated == [plan.journey_id]
    deployed = await describe_schedule(segments.client, plan.journey_id)
    assert deployed is not None and deployed.next_action_times == [at]
