"""Pausing a journey on a real dev server: no new entries; running runs hold before their next
send until resumed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cli import ExitCode
from runtime.lifecycle import pause_journey, resume_journey
from runtime.schedules import describe_schedule
from runtime.starter import start_run
from tests.lifecycle.conftest import Cli
from tests.segments.conftest import Segments
from tests.waiting import eventually
from workflows.contracts import EventPayload, RunStatus
from workflows.journey_workflow import JourneyWorkflow

# The run waits for a `go` event (signalled by the test when it wants the run to move on), then
# sends: no race with a real-time timer.
HOLD = """\
name: Hold before sending
trigger: manual
steps:
  - id: breather
    wait_for: go
    timeout: 1h
  - id: hello
    send: email
    template: onboarding/welcome
"""


async def until(check: Callable[[], Any], what: str) -> None:
    await eventually(check, what)


async def go(segments: Segments, workflow_id: str) -> None:
    """The event the held run waits for, once it waits (an event before the wait is history)."""
    handle = segments.client.get_workflow_handle_for(JourneyWorkflow.run, workflow_id)

    async def waiting() -> bool:
        return (await handle.query(JourneyWorkflow.status)).waiting_for == "go"

    await eventually(waiting, f"{workflow_id} waiting for go")
    event = EventPayload(id=str(uuid.uuid4()), name="go", timestamp=datetime.now(UTC))
    await handle.signal("event", event)


def sent(segments: Segments, contact: str) -> list[str]:
    return [m.status for m in segments.store.ledger.messages_for_contact(contact)]


async def test_pause_holds_a_running_run_before_its_send_and_resume_releases_it(
    segments: Segments,
) -> None:
    plan = segments.write_journey(HOLD)
    [contact] = segments.contacts(1)
    async with segments.worker():
        started = await start_run(
            segments.client, segments.store, plan, contact, task_queue=segments.queue
        )
        assert started.started
        await until(lambda: segments.runs(plan.journey_id), "the run recorded")
        paused = await pause_journey(
            segments.client, segments.store, plan.journey_id, second_sweep_after=0
        )
        assert paused.signalled == 1 and paused.schedule is None
        handle = segments.client.get_workflow_handle_for(JourneyWorkflow.run, started.workflow_id)

        async def held() -> RunStatus:
            return await handle.query(JourneyWorkflow.status)

        assert (await held()).paused
        await go(segments, started.workflow_id)  # on to the send, which the pause holds
        status = await eventually(
            lambda: _waiting_for_resume(held), "the run held before its send", seen=lambda _: None
        )
        assert status.paused and status.step == "hello"
        assert sent(segments, contact) == []  # held: the query sees the run blocked on resume

        refused = await start_run(
            segments.client, segments.store, plan, "someone-else", task_queue=segments.queue
        )
        assert refused.refused == "paused"

        resumed = await resume_journey(
            segments.client, segments.store, plan.journey_id, plan, segments.queue
        )
        assert resumed.signalled == 1 and not resumed.paused
        result = await handle.result()
    assert result.outcome == "completed"
    assert sent(segments, contact) == ["sent"]


async def test_a_paused_journey_refuses_a_start(segments: Segments) -> None:
    plan = segments.write_journey(HOLD)
    in_yaml = segments.write_journey(
        HOLD.replace("trigger: manual", "status: paused\ntrigger: manual")
    )
    segments.contacts(1)
    segments.store.set_journey_paused(plan.journey_id, True)
    for journey in (plan, in_yaml):
        result = await start_run(
            segments.client, segments.store, journey, "c000", task_queue=segments.queue
        )
        assert result.refused == "paused" and not result.started
        assert result.reason == f"journey {journey.journey_id!r} is paused"
    segments.store.set_journey_paused(plan.journey_id, False)
    async with segments.worker():
        allowed = await start_run(
            segments.client, segments.store, plan, "c000", task_queue=segments.queue
        )
        assert allowed.started
        await go(segments, allowed.workflow_id)
        await segments.client.get_workflow_handle(allowed.workflow_id).result()


async def test_pausing_a_segment_journey_removes_its_schedule_and_resume_restores_it(
    segments: Segments,
) -> None:
    plan = segments.journey()
    await resume_journey(segments.client, segments.store, plan.journey_id, plan, segments.queue)
    assert await describe_schedule(segments.client, plan.journey_id) is not None
    report = await pause_journey(
        segments.client, segments.store, plan.journey_id, second_sweep_after=0
    )
    assert report.schedule == "deleted" and report.signalled == 0
    assert await describe_schedule(segments.client, plan.journey_id) is None
    assert plan.journey_id in segments.store.paused_journeys()
    report = await resume_journey(
        segments.client, segments.store, plan.journey_id, plan, segments.queue
    )
    assert report.schedule == "created"
    assert plan.journey_id not in segments.store.paused_journeys()


async def test_pause_and_resume_commands(segments: Segments, cli: Cli) -> None:
    plan = segments.write_journey(HOLD)
    [contact] = segments.contacts(1)
    async with segments.worker():
        started = await start_run(
            segments.client, segments.store, plan, contact, task_queue=segments.queue
        )
        await until(lambda: segments.runs(plan.journey_id), "the run recorded")
        code, out, _ = await cli("pause", plan.journey_id, "--json")
        assert code == 0, out
        assert json.loads(out) == {
            "journey": plan.journey_id,
            "paused": True,
            "runs_signalled": 1,
            "runs_already_ended": 0,
            "schedule": None,
            "schedule_id": None,
        }
        handle = segments.client.get_workflow_handle_for(JourneyWorkflow.run, started.workflow_id)
        assert (await handle.query(JourneyWorkflow.status)).paused

        code, out, _ = await cli("resume", plan.journey_id)
        assert code == 0
        assert out.strip() == (
            f"resumed {plan.journey_id}: new entries allowed; 1 running run(s) signalled to go on"
        )
        assert not (await handle.query(JourneyWorkflow.status)).paused
        await handle.terminate("done")

    code, _, error = await cli("pause", "no_such_journey")
    assert code == ExitCode.USAGE
    assert error.startswith("no journey named 'no_such_journey' in ")


async def test_the_second_sweep_catches_a_run_recorded_after_the_first(
    segments: Segments,
) -> None:
    plan = segments.write_journey(HOLD)
    segments.contacts(2)
    async with segments.worker():
        first = await start_run(
            segments.client, segments.store, plan, "c000", task_queue=segments.queue
        )
        await until(lambda: len(segments.runs(plan.journey_id)) == 1, "the first run recorded")
        pausing = asyncio.create_task(
            pause_journey(segments.client, segments.store, plan.journey_id, second_sweep_after=3)
        )
        first_handle = segments.client.get_workflow_handle_for(
            JourneyWorkflow.run, first.workflow_id
        )

        async def first_sweep_done() -> bool:
            return (await first_handle.query(JourneyWorkflow.status)).paused

        await eventually(first_sweep_done, "the first sweep to pause the first run")
        # A start that passed the paused check just before the flag was set: only the second
        # sweep can reach it.
        late = await start_run(
            segments.client, segments.store, plan, "c001", task_queue=segments.queue, paused=False
        )
        report = await asyncio.wait_for(pausing, timeout=timedelta(seconds=10).total_seconds())
        assert report.signalled == 2
        for run in (first, late):
            handle = segments.client.get_workflow_handle_for(JourneyWorkflow.run, run.workflow_id)
            assert (await handle.query(JourneyWorkflow.status)).paused
            await handle.terminate("done")


async def _waiting_for_resume(held: Callable[[], Awaitable[RunStatus]]) -> RunStatus | None:
    status = await held()
    return status if status.waiting_for == "resume" else None
