"""The nightly `traits:rfm` Temporal Schedule, triggered on the session's dev server: its
workflow runs the refresh activity on the worker, which scores RFM into the store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from temporalio.client import ScheduleActionExecutionStartWorkflow

from runtime.trait_schedule import traits_schedule
from store import EventRecord
from tests.stack.helpers import Stack
from tests.waiting import eventually
from workflows.traits_workflow import TraitsRefreshWorkflow


def orders(stack: Stack, contact: str, *days_ago: float, total: float = 40) -> None:
    now = datetime.now(UTC)
    for n, days in enumerate(days_ago):
        stack.store.record_event(
            EventRecord(
                contact_id=contact,
                name="order_placed",
                properties={"total": total},
                timestamp=now - timedelta(days=days),
                message_id=f"{contact}-{n}",
            )
        )


async def test_the_traits_schedule_scores_rfm_through_the_worker(stack: Stack) -> None:
    # Quintiles rank every customer in the (shared) store: the regular orders more often and
    # more recently than anyone, the lapsed one ordered once, a year ago, like the others'
    # fewest; three more customers make sure there are five at least.
    regular, lapsed = stack.contact(), stack.contact()
    orders(stack, regular, 0, 1, 2, 3, 4, 5, 6, 7, total=90)
    orders(stack, lapsed, 360, total=15)
    for _ in range(3):
        orders(stack, stack.contact(), 30)
    assert "rfm_segment" not in stack.store.traits_of(regular)

    # The schedule `rapport run` creates, under a name of its own on the session's server.
    schedule = await stack.client.create_schedule(
        f"traits:rfm:{uuid.uuid4().hex[:8]}", traits_schedule(stack.task_queue)
    )
    try:
        await schedule.trigger()

        async def started() -> str | None:
            actions = (await schedule.describe()).info.recent_actions
            for action in actions:
                if isinstance(action.action, ScheduleActionExecutionStartWorkflow):
                    return action.action.workflow_id
            return None

        workflow_id = await eventually(started, "the schedule to start its workflow")
        handle = stack.client.get_workflow_handle_for(TraitsRefreshWorkflow.run, workflow_id)
        result = await handle.result()
    finally:
        await schedule.delete()

    assert result["changed"]["rfm"] >= 10
    scored = [stack.store.traits_of(contact) for contact in (regular, lapsed)]
    assert [(t["rfm_recency"], t["rfm_frequency"], t["rfm_segment"]) for t in scored] == [
        (5, 5, "champions"),
        (1, 1, "lost"),
    ]
