"""Segment ticks and schedules on a REAL Temporal dev server (the stack tests' session fixture),
each test with its own task queue, temporary SQLite store, outbox and uniquely named journeys."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.journey_activities import JourneyActivities
from activities.plans import save_plan
from activities.segment_activities import SegmentActivities, Starter
from providers.outbox import OutboxEmailProvider, OutboxSmsProvider
from runtime.schedules import delete_schedule
from runtime.temporal import connect
from runtime.workers import WORKFLOWS, workflow_runner
from store import Store
from store.records import ContactRecord, EventRecord, RunRecord
from tests.stack.helpers import ROOT, project_settings

# The store tests' `store` fixture, on SQLite and PostgreSQL, for the tests without Temporal.
from tests.store.conftest import (  # noqa: F401
    backend,
    postgres_databases,
    postgres_store_url,
    store,
    store_url,
)
from workflows.compiler import compile_journey
from workflows.plan import JourneyPlan
from workflows.segment_workflow import SegmentTickInput, SegmentTickWorkflow, TickProgress

JOURNEY = """\
name: {name}
trigger:
  segment: {segment}
  {when}
{extra}
steps:
  - id: hello
    send: email
    template: onboarding/welcome
"""


@dataclass
class Segments:
    client: Client
    store: Store
    queue: str
    tmp: Path
    settings: Any
    journeys: Path = field(init=False)
    made: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.journeys = self.tmp / "journeys"
        self.journeys.mkdir(exist_ok=True)

    def journey(
        self,
        segment: str = 'contact.tier == "gold"',
        *,
        schedule: str | None = "0 9 * * *",
        at: str | None = None,
        extra: str = "",
        name: str | None = None,
    ) -> JourneyPlan:
        """A one-send segment journey with a unique id (the dev server is shared)."""
        journey_id = name or f"seg_{uuid.uuid4().hex[:10]}"
        when = f'at: "{at}"' if at else f'schedule: "{schedule}"'
        text = JOURNEY.format(
            name=f"Segment {journey_id}", segment=json.dumps(segment), when=when, extra=extra
        )
        return self.write_journey(text, journey_id)

    def write_journey(self, text: str, journey_id: str | None = None) -> JourneyPlan:
        """Write `journeys/<id>.yaml` (a unique id unless given) and compile it."""
        journey_id = journey_id or f"j_{uuid.uuid4().hex[:10]}"
        self.made.add(journey_id)
        path = self.journeys / f"{journey_id}.yaml"
        path.write_text(text)
        plan, diagnostics = compile_journey(path, ROOT / "templates")
        assert plan is not None, [str(d) for d in diagnostics]
        save_plan(self.store, plan)  # as `rapport sync` does before making its schedule
        return plan

    def contacts(self, count: int, **attributes: Callable[[int], Any]) -> list[str]:
        """Contacts c000…, each attribute computed from its number."""
        ids = []
        records = []
        for number in range(count):
            contact_id = f"c{number:03d}"
            ids.append(contact_id)
            records.append(
                ContactRecord(
                    id=contact_id,
                    email=f"{contact_id}@example.com",
                    attributes={name: make(number) for name, make in attributes.items()},
                )
            )
        self.store.upsert_contacts(records)
        return ids

    def event(self, contact_id: str, name: str, at: Any, **properties: Any) -> None:
        self.store.record_event(
            EventRecord(contact_id=contact_id, name=name, timestamp=at, properties=properties)
        )

    def runs(self, journey: str) -> list[RunRecord]:
        return self.store.list_runs(journey)

    def entered(self, journey: str) -> dict[str, int]:
        """Runs per contact in the store."""
        counts: dict[str, int] = {}
        for run in self.runs(journey):
            counts[run.contact_id] = counts.get(run.contact_id, 0) + 1
        return counts

    async def tick(
        self, plan: JourneyPlan, *, workflow_id: str | None = None, **options: Any
    ) -> TickProgress:
        handle = await self.start_tick(plan, workflow_id=workflow_id, **options)
        return await handle.result()

    async def start_tick(
        self, plan: JourneyPlan, *, workflow_id: str | None = None, **options: Any
    ) -> WorkflowHandle[Any, TickProgress]:
        return await self.client.start_workflow(
            SegmentTickWorkflow.run,
            SegmentTickInput(journey=plan.journey_id, version=plan.version, **options),
            id=workflow_id or f"segment-tick:{plan.journey_id}:{uuid.uuid4().hex[:6]}",
            task_queue=self.queue,
            execution_timeout=timedelta(minutes=2),
        )

    @asynccontextmanager
    async def worker(self, start: Starter | None = None) -> AsyncIterator[Worker]:
        """A worker for journeys and ticks; `start` replaces `start_run` in the tick."""
        journeys = JourneyActivities(
            store=self.store,
            email=OutboxEmailProvider(self.tmp / "outbox"),
            sms=OutboxSmsProvider(self.tmp / "outbox"),
            settings=self.settings,
        )
        segments = SegmentActivities(self.store, self.client, self.queue, start=start)
        async with Worker(
            self.client,
            task_queue=self.queue,
            workflows=WORKFLOWS,
            activities=[*journeys.all(), *segments.all()],
            workflow_runner=workflow_runner(),
        ) as worker:
            yield worker


@pytest.fixture
async def segments(dev_server: str, tmp_path: Path) -> AsyncIterator[Segments]:
    settings = project_settings(data_dir=tmp_path, temporal_address=dev_server)
    client = await connect(settings)
    opened = Store.open(f"sqlite:///{tmp_path / 'rapport.db'}")
    segments = Segments(client, opened, f"segments-{uuid.uuid4().hex[:8]}", tmp_path, settings)
    try:
        yield segments
    finally:
        for journey in segments.made:  # the dev server outlives the test
            await delete_schedule(client, journey)
        opened.close()
