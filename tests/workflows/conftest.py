"""Shared fixtures: one Temporal time-skipping server per session, and a way to run a journey."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from runtime.simulator import ScheduledEvent, SimulationResult, simulate
from runtime.temporal import start_time_skipping
from settings import Settings
from store.records import ContactRecord, EventRecord
from workflows.compiler import compile_journey
from workflows.plan import JourneyPlan

ROOT = Path(__file__).resolve().parents[2]
# A Monday, 15:00 UTC: 10:00 in New York, 16:00 in Paris — outside everyone's quiet hours.
START = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with await start_time_skipping() as environment:
        yield environment


def compile_plan(path: Path, templates: Path = ROOT / "templates") -> JourneyPlan:
    plan, diagnostics = compile_journey(path, templates)
    assert plan is not None, [str(d) for d in diagnostics]
    return plan


def sample(name: str) -> JourneyPlan:
    return compile_plan(ROOT / "journeys" / f"{name}.yaml")


def contact(contact_id: str = "alice", **overrides: Any) -> ContactRecord:
    fields: dict[str, Any] = {
        "id": contact_id,
        "email": f"{contact_id}@example.com",
        "phone": "+12125550100",
        "timezone": "America/New_York",
        "locale": "en_US",
        "attributes": {"first_name": contact_id.title(), "plan": "starter"},
    }
    fields.update(overrides)
    return ContactRecord(**fields)


def at(after: str, event: str, **properties: Any) -> ScheduledEvent:
    return ScheduledEvent.model_validate({"after": after, "event": event, "properties": properties})


@dataclass
class Runner:
    env: WorkflowEnvironment
    tmp_path: Path

    async def __call__(
        self,
        plan: JourneyPlan,
        who: ContactRecord,
        events: list[ScheduledEvent],
        *,
        history: list[EventRecord] | None = None,
        start: datetime = START,
        until: timedelta = timedelta(days=30),
        holdout: bool = False,
    ) -> SimulationResult:
        work = self.tmp_path / f"run-{len(list(self.tmp_path.iterdir()))}"
        work.mkdir()
        return await simulate(
            plan,
            who,
            history or [],
            events,
            start=start,
            until=until,
            settings=Settings(),
            work_dir=work,
            holdout=holdout,
            env=self.env,
        )


@pytest.fixture
def run(env: WorkflowEnvironment, tmp_path: Path) -> Runner:
    return Runner(env, tmp_path)


def sends(result: SimulationResult) -> list[tuple[str, str, str]]:
    """(step, channel, status) of every send, in order."""
    return [
        (e.step or "", e.channel or "", e.status or "") for e in result.timeline if e.type == "send"
    ]
