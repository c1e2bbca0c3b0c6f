"""A live worker on the shared time-skipping server, for tests that drive runs by hand."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.journey_activities import JourneyActivities
from activities.plans import save_plan
from providers import EmailProvider, SmsProvider
from providers.outbox import OutboxEmailProvider, OutboxSmsProvider
from runtime.workers import build_worker
from settings import Settings
from store import Store
from store.records import ContactRecord
from workflows.contracts import EventPayload, JourneyInput, JourneyResult
from workflows.ids import workflow_id_for
from workflows.journey_workflow import JourneyWorkflow
from workflows.plan import JourneyPlan


class Harness:
    def __init__(self, env: WorkflowEnvironment, activities: JourneyActivities, queue: str) -> None:
        self.env = env
        self.activities = activities
        self.store = activities.store
        self.queue = queue
        self.handles: list[WorkflowHandle[Any, Any]] = []
        self._events = 0

    async def start(
        self,
        plan: JourneyPlan,
        contact: ContactRecord,
        *,
        trigger: EventPayload | None = None,
        key: str | None = None,
        holdout: bool | None = False,
        at: datetime | None = None,
        arms: dict[str, str] | None = None,
    ) -> WorkflowHandle[Any, JourneyResult]:
        """Start a run; `at` makes the run's clock start there (as the simulator does)."""
        self.store.upsert_contact(contact)
        save_plan(self.store, plan)
        shift = at - await self.now() if at is not None else timedelta(0)
        workflow_id = f"{workflow_id_for(plan.journey_id, contact.id, key)}:{self.queue}"
        handle = await self.env.client.start_workflow(
            JourneyWorkflow.run,
            JourneyInput(
                journey=plan.journey_id,
                version=plan.version,
                contact_id=contact.id,
                trigger=trigger,
                key=key,
                holdout=holdout,
                clock_shift=shift,
                arms=arms,
            ),
            id=workflow_id,
            task_queue=self.queue,
        )
        self.handles.append(handle)
        return handle

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    def event(self, name: str, event_id: str | None = None, **properties: Any) -> EventPayload:
        self._events += 1
        return EventPayload(
            id=event_id or f"e-{self._events}",
            name=name,
            properties=properties,
            timestamp=datetime.now().astimezone(),
        )

    async def advance(self, delta: timedelta) -> None:
        await self.env.sleep(delta)


@asynccontextmanager
async def harness(
    env: WorkflowEnvironment,
    tmp_path: Path,
    *,
    email: EmailProvider | None = None,
    sms: SmsProvider | None = None,
    store: Store | None = None,
) -> AsyncIterator[Harness]:
    own_store = store or Store.open(f"sqlite:///{tmp_path / 'rapport.db'}")
    activities = JourneyActivities(
        store=own_store,
        email=email or OutboxEmailProvider(tmp_path / "outbox"),
        sms=sms or OutboxSmsProvider(tmp_path / "outbox"),
        settings=Settings(),
    )
    queue = f"test-{uuid.uuid4()}"
    try:
        async with build_worker(env.client, activities, queue):
            yield Harness(env, activities, queue)
    finally:
        if store is None:
            own_store.close()


def local_activities(history: WorkflowHistory) -> list[str]:
    """The local activities a run ran, in order (from their markers)."""
    return [
        json.loads(event.marker_recorded_event_attributes.details["data"].payloads[0].data)[
            "activity_type"
        ]
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        and "data" in event.marker_recorded_event_attributes.details
    ]


def activity_attempts(history: WorkflowHistory, activity_type: str) -> list[int | str]:
    """The calls of `activity_type` in `history`, in order: "local" for a local activity
    (its marker), for a regular one how many attempts it took (when it finished)."""
    scheduled: dict[int, str] = {}
    calls: list[int | str] = []
    for event in history.events:
        marker = event.marker_recorded_event_attributes
        if event.HasField("marker_recorded_event_attributes") and "data" in marker.details:
            data = marker.details["data"].payloads[0].data
            if json.loads(data)["activity_type"] == activity_type:
                calls.append("local")
        elif event.HasField("activity_task_scheduled_event_attributes"):
            attributes = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attributes.activity_type.name
        elif event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            if scheduled.get(started.scheduled_event_id) == activity_type:
                calls.append(started.attempt)
    return calls
