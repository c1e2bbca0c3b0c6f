"""The main paths through the sample journeys, run by the simulator on a time-skipping server.

One list for three users: the recorded histories the replay test checks
(`tests/workflows/histories/`, re-recorded with `python -m tests.workflows.record_histories`),
and `bench/history_bytes.py`, which measures how much history each path writes.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from runtime.simulator import ScheduledEvent, SimulationResult, load_events_file, simulate
from settings import Settings
from store.records import ContactRecord
from workflows.compiler import compile_journey
from workflows.contact_file import load_contact_file

ROOT = Path(__file__).resolve().parents[2]
# A Monday, 15:00 UTC: inside nobody's quiet hours.
MONDAY = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def _at(after: str, event: str, **properties: object) -> ScheduledEvent:
    return ScheduledEvent.model_validate({"after": after, "event": event, "properties": properties})


@dataclass(frozen=True)
class SamplePath:
    name: str
    journey: str
    contact: str
    outcome: str
    events: list[ScheduledEvent] = field(default_factory=list)
    events_file: str | None = None
    start: datetime = MONDAY
    journeys: Path = ROOT / "journeys"
    until: timedelta = timedelta(days=30)

    def scheduled(self) -> list[ScheduledEvent]:
        if self.events_file is None:
            return self.events
        return load_events_file(ROOT / "simulations" / self.events_file)


PATHS = (
    # The yardstick: the welcome email, then an order converts the run.
    SamplePath(
        "onboarding_converts",
        "onboarding",
        "alice",
        "converted",
        [_at("1m", "signed_up", plan="starter"), _at("1d", "order_placed", order_id="A-1")],
    ),
    SamplePath(
        "onboarding_never_orders",
        "onboarding",
        "alice",
        "completed",
        events_file="onboarding_never_orders.yaml",
    ),
    SamplePath(
        "win_back_orders",
        "win_back",
        "bruno",
        "converted",
        [_at("3d", "order_placed", order_id="D-9")],
    ),
    SamplePath(
        "vip_event_rsvp",
        "vip_event",
        "chen",
        "completed",
        events_file="vip_rsvp.yaml",
        start=datetime(2026, 12, 1, 17, 0, tzinfo=UTC),
    ),
    SamplePath(
        "feedback_detractor",
        "feedback_follow_up",
        "dana",
        "completed",
        events_file="feedback_detractor.yaml",
    ),
    SamplePath(
        "feedback_sms_reply",
        "feedback_follow_up",
        "eli",
        "completed",
        events_file="feedback_sms_reply.yaml",
    ),
    # The list form's condition, an identify and `since` (no sample journey has them yet).
    SamplePath(
        "wait_for_gold_after_identify",
        "reply_or_gold",
        "alice",
        "gold",
        [
            _at("1m", "order_delivered", order_id="A-1"),
            ScheduledEvent.model_validate({"after": "1d", "identify": {"vip": True}}),
        ],
        journeys=Path(__file__).resolve().parent / "journeys",
    ),
    SamplePath(
        "loyalty_gold",
        "loyalty_tier_upgrade",
        "chen",
        "completed",
        events_file="loyalty_gold.yaml",
    ),
    SamplePath(
        "referral_first_order",
        "referral_reward",
        "dana",
        "completed",
        events_file="referral_first_order.yaml",
    ),
    # A date trigger across a year: entered a week before the birthday, 09:00 Berlin; a
    # wait_until on a later calendar day; an order inside the goal's 14-day window converts.
    SamplePath(
        "birthday_reward_orders",
        "birthday_reward",
        "dana",
        "converted",
        events_file="birthday_orders.yaml",
        start=datetime(2027, 1, 1, tzinfo=UTC),
        until=timedelta(days=90),
    ),
)


async def run_path(
    env: WorkflowEnvironment, path: SamplePath, work_dir: Path
) -> tuple[SimulationResult, WorkflowHistory]:
    plan, diagnostics = compile_journey(path.journeys / f"{path.journey}.yaml", ROOT / "templates")
    assert plan is not None, [str(d) for d in diagnostics]
    contact_file = load_contact_file(ROOT / "contacts" / f"{path.contact}.yaml")
    contact = ContactRecord(**contact_file.profile())
    history = contact_file.event_records(path.start)
    result = await simulate(
        plan,
        contact,
        history,
        path.scheduled(),
        start=path.start,
        until=path.until,
        settings=Settings(),
        work_dir=work_dir,
        env=env,
    )
    assert result.outcome == path.outcome, (path.name, result.outcome)
    assert result.workflow_id is not None
    return result, await env.client.get_workflow_handle(result.workflow_id).fetch_history()


async def run_all(
    env: WorkflowEnvironment, names: list[str] | None = None
) -> AsyncIterator[tuple[SamplePath, WorkflowHistory]]:
    """Every path (or those named), with its history."""
    with tempfile.TemporaryDirectory(prefix="rapport-paths-") as directory:
        for position, path in enumerate(PATHS):
            if names and path.name not in names:
                continue
            work = Path(directory) / str(position)
            work.mkdir()
            _, history = await run_path(env, path, work)
            yield path, history
