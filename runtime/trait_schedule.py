"""The nightly `traits:rfm` Temporal Schedule (SPEC §5b); its activity is in
`runtime.trait_activities`.

Rolling windows (`within:`) only grow as events arrive; each night the schedule recomputes them,
the derived traits and RFM (`runtime.traits.rebuild(windows_only=True)`) and routes the
`trait_changed` events that caused, so "became at_risk" can start a journey. `rapport run` and
`rapport sync` create the schedule (03:00 UTC daily; overlapping runs skipped, a missed night
caught up within a day), as they do segment schedules.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from workflows.traits_workflow import SCHEDULE_ID, WORKFLOW_ID, TraitsRefreshWorkflow

CRON = "0 3 * * *"


def traits_schedule(task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            TraitsRefreshWorkflow.run,
            id=WORKFLOW_ID,
            task_queue=task_queue,
            static_summary="traits: rolling windows, derived traits and RFM",
        ),
        spec=ScheduleSpec(cron_expressions=[CRON]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


async def ensure_traits_schedule(client: Client, task_queue: str) -> bool:
    """Create the schedule if it is missing; True when created."""
    try:
        await client.create_schedule(SCHEDULE_ID, traits_schedule(task_queue))
    except ScheduleAlreadyRunningError:
        return False
    return True
