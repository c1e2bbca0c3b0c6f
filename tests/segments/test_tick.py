"""Segment ticks on a real dev server: who enters, page by page, exactly once."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runtime.starter import StartResult, start_run
from store.records import ContactRecord
from tests.segments.conftest import Segments
from tests.waiting import eventually
from workflows.segment_workflow import SegmentTickInput, SegmentTickWorkflow

NOW = datetime.now(UTC).replace(microsecond=0)
WIN_BACK = (
    'days_since(contact.last_order_at) >= 60 and count_events("order_placed", within="60d") == 0'
)


def days_ago(days: int) -> str:
    return (NOW - timedelta(days=days)).isoformat()


async def settled(segments: Segments, journey: str, count: int) -> None:
    """Wait until `count` runs are recorded and have all ended."""
    await eventually(
        lambda: (
            len(runs := segments.runs(journey)) >= count
            and all(run.ended_at is not None for run in runs)
        ),
        f"{count} runs of {journey} recorded and ended",
        seen=lambda _: [(run.contact_id, run.ended_at) for run in segments.runs(journey)],
    )


async def test_tick_enrols_exactly_the_matching_contacts_page_by_page(segments: Segments) -> None:
    plan = segments.journey(WIN_BACK, extra="audience: contact.email is defined")
    segments.contacts(10, last_order_at=lambda n: days_ago(n * 10 + 1))
    segments.event("c007", "order_placed", NOW - timedelta(days=10))  # ordered lately: out
    segments.event("c008", "order_placed", NOW - timedelta(days=70))  # long ago: still in
    segments.event("c008", "page_viewed", NOW - timedelta(days=1))
    segments.store.upsert_contact(ContactRecord(id="c003", attributes={"last_order_at": "never"}))
    segments.store.upsert_contact(
        ContactRecord(id="c010", attributes={"last_order_at": days_ago(300)})  # no email
    )
    async with segments.worker():
        progress = await segments.tick(plan, tick_at=NOW, page_size=3, pages_per_run=2)
        await settled(segments, plan.journey_id, 3)
    assert progress.done and progress.outcome == "completed"
    assert progress.pages == 4 and progress.scanned == 11
    assert progress.matched == 3  # c006, c008, c009
    assert progress.enrolled == 3
    assert progress.errors == 1 and "c003" in progress.error_samples[0]
    assert progress.cursor == "c010"
    assert segments.entered(plan.journey_id) == {"c006": 1, "c008": 1, "c009": 1}
    run = segments.runs(plan.journey_id)[0]
    assert run.data == {"segment_tick": progress.tick_id}


async def test_progress_query_while_the_tick_runs(segments: Segments) -> None:
    plan = segments.journey("true")
    segments.contacts(6)
    release, starting = asyncio.Event(), asyncio.Event()

    async def slow_start(*args: Any, **kwargs: Any) -> StartResult:
        starting.set()
        await release.wait()
        return await start_run(*args, **kwargs)

    async with segments.worker(start=slow_start):
        handle = await segments.start_tick(plan, page_size=2, concurrency=1)
        await asyncio.wait_for(starting.wait(), 20)  # the tick is inside its first page
        seen = await handle.query("progress")
        assert seen["pages"] == 0 and seen["done"] is False
        assert seen["journey"] == plan.journey_id and seen["version"] == plan.version
        release.set()
        final = await handle.result()
        seen = await handle.query("progress")
    assert final.enrolled == 6 and final.pages == 3
    assert seen["enrolled"] == 6 and seen["done"] is True


async def test_a_second_tick_enrols_nobody_again(segments: Segments) -> None:
    plan = segments.journey()
    segments.contacts(8, tier=lambda n: "gold" if n % 2 else "silver")
    async with segments.worker():
        first = await segments.tick(plan, page_size=3)
        second = await segments.tick(plan, page_size=3)  # another tick, runs maybe still open
        await settled(segments, plan.journey_id, 4)
        third = await segments.tick(plan, page_size=3)  # after every run has ended
    assert first.matched == first.enrolled == 4
    assert second.enrolled == 0 and second.matched == 4
    assert second.already_running + second.skipped_reentry == 4
    assert third.enrolled == 0 and third.skipped_reentry == 4
    assert segments.entered(plan.journey_id) == {"c001": 1, "c003": 1, "c005": 1, "c007": 1}
    messages = [
        m
        for c in ("c001", "c003", "c005", "c007")
        for m in segments.store.ledger.messages_for_contact(c)
    ]
    assert len(messages) == 4


async def test_the_same_tick_again_enrols_once_even_when_reentry_is_always(
    segments: Segments,
) -> None:
    plan = segments.journey("true", extra="reentry: always")
    segments.contacts(5)
    async with segments.worker():
        first = await segments.tick(plan, tick_id="tick-1")
        await settled(segments, plan.journey_id, 5)
        again = await segments.tick(plan, tick_id="tick-1")
        assert again.enrolled == 0 and again.already_enrolled == 5
        assert set(segments.entered(plan.journey_id).values()) == {1}
        next_tick = await segments.tick(plan, tick_id="tick-2")  # a new tick: always re-enters
        await settled(segments, plan.journey_id, 10)
    assert first.enrolled == 5 and next_tick.enrolled == 5
    assert set(segments.entered(plan.journey_id).values()) == {2}


async def test_a_crash_in_the_middle_of_a_page_never_double_enrols(segments: Segments) -> None:
    plan = segments.journey("true")
    contacts = segments.contacts(6)
    starts: list[str] = []
    crashed: list[bool] = []

    async def crashing_start(client: Any, store: Any, plan: Any, contact_id: str, **kw: Any) -> Any:
        if len(starts) == 3 and not crashed:
            crashed.append(True)
            raise RuntimeError("the worker died here")
        starts.append(contact_id)
        return await start_run(client, store, plan, contact_id, **kw)

    async with segments.worker(start=crashing_start):
        progress = await segments.tick(plan, page_size=10, concurrency=1)
        await settled(segments, plan.journey_id, 6)
    assert crashed  # the first attempt of the page failed after 3 starts and was retried
    assert progress.matched == 6
    assert progress.enrolled == 3  # the retry started the other three
    assert progress.already_enrolled + progress.already_running == 3
    assert segments.entered(plan.journey_id) == dict.fromkeys(contacts, 1)


async def test_a_tick_killed_mid_way_and_run_again_enrols_each_contact_once(
    segments: Segments,
) -> None:
    plan = segments.journey("true")
    contacts = segments.contacts(12)

    starts_in_flight = 0

    async def slow_start(*args: Any, **kwargs: Any) -> StartResult:
        nonlocal starts_in_flight
        starts_in_flight += 1
        try:
            await asyncio.sleep(0.15)
            return await start_run(*args, **kwargs)
        finally:
            starts_in_flight -= 1

    async with segments.worker(start=slow_start):
        killed = await segments.start_tick(plan, tick_id="tick-k", page_size=2, concurrency=1)
        await eventually(lambda: len(segments.runs(plan.journey_id)) >= 3, "3 runs started")
        await killed.terminate("killed mid-tick")
        rerun = await segments.tick(plan, tick_id="tick-k", page_size=2, concurrency=1)
        await settled(segments, plan.journey_id, 12)
        # A straggling start of the killed tick would still be in flight: wait for none.
        await eventually(lambda: starts_in_flight == 0, "no start in flight")
    assert 0 < rerun.enrolled < 12
    # The killed tick's last page may still be starting runs while the rerun reads it: those
    # contacts are refused by start_run itself (already running, or reentry once recorded).
    others = rerun.already_enrolled + rerun.already_running + rerun.skipped_reentry
    assert rerun.enrolled + others == 12
    assert segments.entered(plan.journey_id) == dict.fromkeys(contacts, 1)


@pytest.mark.parametrize("how", ["store", "yaml"])
async def test_a_paused_journey_tick_enrols_nobody(segments: Segments, how: str) -> None:
    plan = segments.journey("true", extra="status: paused" if how == "yaml" else "")
    if how == "store":
        segments.store.set_journey_paused(plan.journey_id, True)
    segments.contacts(3)
    async with segments.worker():
        progress = await segments.tick(plan)
    assert progress.outcome == "paused" and progress.enrolled == 0 and progress.scanned == 0
    assert segments.runs(plan.journey_id) == []


async def test_a_tick_and_its_pages_carry_the_plan_by_reference(segments: Segments) -> None:
    plan = segments.journey("true")
    segments.contacts(3)
    async with segments.worker():
        handle = await segments.start_tick(plan, page_size=2)
        progress = await handle.result()
        await settled(segments, plan.journey_id, 3)
        history = await handle.fetch_history()
    assert progress.enrolled == 3
    inputs = [
        json.loads(event.activity_task_scheduled_event_attributes.input.payloads[0].data)
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    assert len(inputs) == 2  # two pages
    for page in inputs:
        assert (page["journey"], page["version"]) == (plan.journey_id, plan.version)
        assert page.get("plan") is None


async def test_a_schedule_made_before_ticks_with_its_inline_plan(segments: Segments) -> None:
    """Schedules created by earlier releases start ticks with the whole plan in their input."""
    plan = segments.journey("true")
    contacts = segments.contacts(2)
    async with segments.worker():
        progress = await segments.client.execute_workflow(
            SegmentTickWorkflow.run,
            SegmentTickInput(plan=plan),
            id=f"segment-tick:{plan.journey_id}:old",
            task_queue=segments.queue,
            execution_timeout=timedelta(minutes=2),
        )
        await settled(segments, plan.journey_id, 2)
    assert (progress.journey, progress.version, progress.enrolled) == (
        plan.journey_id,
        plan.version,
        2,
    )
    assert segments.entered(plan.journey_id) == dict.fromkeys(contacts, 1)
