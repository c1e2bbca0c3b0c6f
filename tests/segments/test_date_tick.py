"""A date trigger's tick on a real dev server: each contact enters once per occurrence however
often a tick covering it runs, a moment later in the hour is a start delay, and the run carries
its occurrence."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from temporalio.client import WorkflowExecutionStatus

from store.records import ContactRecord
from tests.segments.conftest import Segments
from tests.segments.test_tick import settled
from workflows.ids import workflow_id_for

BIRTHDAY = """\
name: Birthday
trigger:
  date: contact.birthday
  at: "{at}"
steps:
  - id: hello
    send: email
    template: onboarding/welcome
"""


def born_today(segments: Segments, count: int, today: datetime) -> list[str]:
    ids = [f"b{n}" for n in range(count)]
    segments.store.upsert_contacts(
        ContactRecord(
            id=contact_id,
            email=f"{contact_id}@example.com",
            timezone="UTC",
            attributes={"birthday": today.replace(year=1990).date().isoformat()},
        )
        for contact_id in ids
    )
    return ids


async def test_a_birthday_hour_ticked_twice_enrols_each_contact_once(segments: Segments) -> None:
    # The hour that just began: its occurrences are due, so they start at once.
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    if hour.month == 2 and hour.day == 29:
        hour -= timedelta(days=1)
    plan = segments.write_journey(BIRTHDAY.format(at=hour.strftime("%H:%M")))
    contacts = born_today(segments, 3, hour)
    async with segments.worker():
        first = await segments.tick(plan, tick_at=hour, tick_id="tick-a")
        await settled(segments, plan.journey_id, 3)
        again = await segments.tick(plan, tick_at=hour, tick_id="tick-b")
    assert (first.matched, first.enrolled) == (3, 3)
    assert (again.enrolled, again.already_enrolled) == (0, 3)
    occurrence = hour.date().isoformat()
    runs = segments.runs(plan.journey_id)
    assert sorted(run.workflow_id for run in runs) == [
        workflow_id_for(plan.journey_id, contact, occurrence) for contact in contacts
    ]
    assert runs[0].data == {"segment_tick": "tick-a", "occurrence": occurrence}


async def test_a_moment_later_in_the_hour_waits_for_it_and_is_not_started_twice(
    segments: Segments,
) -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    if hour.month == 2 and hour.day == 29:
        hour += timedelta(days=1)
    plan = segments.write_journey(BIRTHDAY.format(at=hour.strftime("%H:30")))
    [contact] = born_today(segments, 1, hour)
    workflow_id = workflow_id_for(plan.journey_id, contact, hour.date().isoformat())
    async with segments.worker():
        first = await segments.tick(plan, tick_at=hour, tick_id=f"t-{uuid.uuid4().hex[:6]}")
        again = await segments.tick(plan, tick_at=hour, tick_id=f"t-{uuid.uuid4().hex[:6]}")
        handle = segments.client.get_workflow_handle(workflow_id)
        description = await handle.describe()
        await handle.terminate("the test is over")
    assert first.enrolled == 1
    assert (again.enrolled, again.already_running) == (0, 1)
    # Started with a delay to hh:30 two hours from now: open, and no run recorded yet.
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert segments.runs(plan.journey_id) == []
