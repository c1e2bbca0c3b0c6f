"""`rapport simulate`: the real journey workflow and activities on Temporal's time-skipping server.

Weeks of journey time pass in seconds: the test server skips ahead whenever nothing is running.
The store is a temporary SQLite file and messages go to a temporary outbox, so a simulation never
touches real contacts or providers. The workflow's clock is shifted so the run starts at `--start`.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.contact_context import contact_snapshot, event_payload
from activities.journey_activities import JourneyActivities
from activities.plans import save_plan
from activities.segment_activities import OCCURRENCE_DATA_KEY, entry_moment
from activities.segment_activities import Moment as EntryMoment
from providers.outbox import OutboxEmailProvider, OutboxSmsProvider
from runtime.starter import ended_run
from runtime.temporal import quiet_runtime, start_time_skipping
from runtime.traits import install_traits
from runtime.workers import build_worker
from settings import Settings
from store import Store
from store.records import ContactRecord, EventRecord
from workflows.contracts import EventPayload, JourneyInput, TimelineEntry
from workflows.entry import (
    NOT_IN_AUDIENCE,
    condition_readings,
    entry_refusal,
    start_refusal,
)
from workflows.ids import workflow_id_for
from workflows.journey_workflow import JourneyWorkflow
from workflows.model import DateTrigger, EventTrigger, Offset, SendStep, SplitStep
from workflows.plan import JourneyPlan
from workflows.source import YamlProblem, read_yaml_file

SKIP_STEP = timedelta(days=1)


class SimulationError(Exception):
    """Bad simulation input (events file, options): the message names the file and field."""


class ScheduledEvent(BaseModel):
    """One entry of an events file: an event (`event`, `properties`), or an `identify` that
    sets contact attributes, as `POST /v1/identify` does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after: Offset = Field(description="When, counted from the simulation start (0m: at it).")
    event: str | None = Field(None, min_length=1)
    properties: dict[str, Any] = Field(default_factory=dict)
    identify: dict[str, Any] | None = Field(
        None, description="Contact attributes to set at that moment (a Segment identify)."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduledEvent:
        if (self.event is None) == (self.identify is None):
            raise ValueError(
                "an entry has either `event: NAME` (with `properties`) or "
                "`identify: {attribute: value, …}`"
            )
        if self.identify is not None and self.properties:
            raise ValueError("`properties` belong to an event; an identify sets attributes")
        return self


@dataclass(frozen=True, eq=False)
class Identify:
    """An identify at `timestamp`: the attributes it sets."""

    timestamp: datetime
    attributes: dict[str, Any]


Moment = EventPayload | Identify


def load_events_file(path: Path) -> list[ScheduledEvent]:
    try:
        raw = read_yaml_file(path)
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise SimulationError(f"{path}: cannot read the events file: {reason}") from None
    except YamlProblem as problem:
        raise SimulationError(problem.at(path)) from None
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SimulationError(
            f"{path}: an events file is a list of "
            "{after: DURATION, event: NAME, properties: {…}} or {after: DURATION, identify: {…}}"
        )
    events: list[ScheduledEvent] = []
    for position, item in enumerate(raw):
        try:
            events.append(ScheduledEvent.model_validate(item))
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "entry"
            message = first["msg"].removeprefix("Value error, ")
            raise SimulationError(f"{path}: event {position + 1}: {field}: {message}") from None
    return sorted(events, key=lambda e: e.after)


@dataclass(frozen=True)
class SimulationResult:
    journey: str
    version: str
    contact: str
    started_at: datetime | None
    outcome: str
    timeline: list[TimelineEntry]
    outbox: Path
    workflow_id: str | None = None  # None: the contact never entered
    reason: str | None = None  # why it never entered, when it did not
    timezone: str = "UTC"  # the contact's (else the journey's fallback): local times
    occurrence: str | None = None  # a date trigger's run: the anniversary it is for
    # A date trigger or local-time schedule entered at its moment, after --start.
    entered_later: bool = False

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(ZoneInfo(self.timezone))

    def as_json(self) -> dict[str, Any]:
        return {
            "journey": self.journey,
            "version": self.version,
            "contact": self.contact,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "outcome": self.outcome,
            "reason": self.reason,
            "outbox": str(self.outbox) if self.outbox.is_dir() else None,  # None: no message
            "timezone": self.timezone,
            "timeline": [
                {**entry.public(), "at_local": self.local(entry.at).isoformat()}
                for entry in self.timeline
                if entry.type != "enter"
            ],
        } | ({"occurrence": self.occurrence} if self.occurrence else {})


def local_zone(plan: JourneyPlan, contact: ContactRecord) -> str:
    """The zone a contact's local times are in: its own, else the journey's fallback, else UTC
    (as quiet hours and `wait_until` read them)."""
    return contact.timezone or plan.journey.settings.timezone or "UTC"


def _why_no_start(
    plan: JourneyPlan, store: Store, contact_id: str, payload: EventPayload
) -> str | None:
    """Why the (stored) event does not start the run (None: it does), as the router decides."""
    trigger = plan.journey.trigger
    assert isinstance(trigger, EventTrigger)
    if payload.name != trigger.event:
        return _no_trigger_event(trigger)
    snapshot = contact_snapshot(store, contact_id, plan.event_questions, payload.timestamp)
    context = snapshot.context(
        payload.timestamp, journey=plan.data_at(payload.timestamp), event=payload.as_variables()
    )
    why = start_refusal(plan.journey, context)
    if why is None:
        return None
    audience = plan.journey.audience
    if why == NOT_IN_AUDIENCE and audience is not None:
        readings = "; ".join(condition_readings(audience, context))
        why += f" ({audience}{': ' if readings else ''}{readings})"
    return f"{payload.name} at {payload.timestamp.isoformat()}: {why}"


def _no_trigger_event(trigger: EventTrigger) -> str:
    return f"no {trigger.event} event (the journey's trigger) in the events file"


def _entry_moment(
    plan: JourneyPlan, store: Store, contact_id: str, start: datetime, end: datetime
) -> EntryMoment | None:
    """When a segment, date or local-time tick would first take the contact in [start, end):
    a date trigger's first occurrence, a local-time schedule's first local fire time, a plain
    segment journey's --start itself."""
    record = store.get_contact(contact_id)
    if record is None:
        return None
    snapshot = contact_snapshot(store, contact_id, plan.event_questions, start)
    return entry_moment(plan, record, snapshot, start, end)


def _no_moment(plan: JourneyPlan, contact: ContactRecord, start: datetime, end: datetime) -> str:
    trigger = plan.journey.trigger
    span = f"between {start.isoformat()} and {end.isoformat()}"
    if isinstance(trigger, DateTrigger):
        value = contact.flattened().get(trigger.attribute)
        held = "is undefined" if value is None else f"= {value!r}"
        return f"no occurrence of {trigger.date} {span} ({trigger.date} {held})"
    schedule = getattr(trigger, "schedule", "")
    return f"the schedule {schedule!r} does not fire in the contact's zone {span}"


def _why_not_enrolled(plan: JourneyPlan, store: Store, contact_id: str, at: datetime) -> str | None:
    """Why a tick at `at` would not enrol the contact (None: it would): its segment and
    audience, evaluated by the tick's own code against the contact and its history."""
    snapshot = contact_snapshot(store, contact_id, plan.event_questions, at)
    context = snapshot.context(at, journey=plan.data_at(at))
    refusal = entry_refusal(plan.journey, context)
    if refusal is None:
        return None
    readings = "; ".join(condition_readings(refusal.expression, context))
    return f"{refusal} (at {at.isoformat()}{': ' if readings else ''}{readings})"


async def simulate(
    plan: JourneyPlan,
    contact: ContactRecord,
    history: list[EventRecord],
    events: list[ScheduledEvent],
    *,
    start: datetime,
    until: timedelta,
    settings: Settings,
    work_dir: Path | None = None,
    holdout: bool = False,
    arms: dict[str, str] | None = None,
    env: WorkflowEnvironment | None = None,
) -> SimulationResult:
    """Run `plan` for `contact` from `start` until `start + until`, feeding `events` on time.

    `arms` forces split arms and content variants (step id -> arm; `forced_arms` checks them).
    `env` lets tests share one time-skipping server; by default each simulation starts its own.
    """
    directory = work_dir or Path(tempfile.mkdtemp(prefix="rapport-simulate-"))
    outbox = directory / "outbox"
    sim_settings = settings.model_copy(update={"data_dir": directory})
    store = Store.open(f"sqlite:///{directory / 'simulation.db'}")
    # The contact's history and events count in its traits; trait_changed for what it reads.
    install_traits(store, settings, {plan.journey.name: plan})
    try:
        save_plan(store, plan)
        store.upsert_contact(contact)
        for event in history:
            store.record_event(event)
        moments = [_moment(item, position, start) for position, item in enumerate(events)]
        trigger: EventPayload | None = None
        before: list[Moment] = []
        refused: str | None = None
        entry_at, occurrence = start, None
        if isinstance(plan.journey.trigger, EventTrigger):
            # Events up to the trigger arrive (are stored) before the run exists, as through
            # the router; the first that starts a run (its `when` and the audience) does.
            refused = _no_trigger_event(plan.journey.trigger)
            for moment in moments:
                _apply(store, contact.id, moment)
                before.append(moment)
                if not isinstance(moment, EventPayload):
                    continue
                why = _why_no_start(plan, store, contact.id, moment)
                if why is None:
                    trigger = moment
                    break
                if moment.name == plan.journey.trigger.event:
                    refused = why
        else:
            entry = _entry_moment(plan, store, contact.id, start, start + until)
            if entry is None:
                refused = _no_moment(plan, contact, start, start + until)
            else:
                entry_at, occurrence = entry.at, entry.key
                before = [m for m in moments if m.timestamp < entry_at]
                for moment in before:
                    _apply(store, contact.id, moment)
                refused = _why_not_enrolled(plan, store, contact.id, entry_at)
        if trigger is None and refused is not None:
            return SimulationResult(
                plan.journey_id,
                plan.version,
                contact.id,
                None,
                "not_entered",
                [],
                outbox,
                reason=refused,
                timezone=local_zone(plan, contact),
            )
        run_start = trigger.timestamp if trigger else entry_at
        after = [m for m in moments if not any(m is earlier for earlier in before)]
        activities = JourneyActivities(
            store=store,
            email=OutboxEmailProvider(outbox),
            sms=OutboxSmsProvider(outbox),
            settings=sim_settings,
        )
        run = _Run(
            plan,
            contact,
            activities,
            trigger,
            after,
            run_start,
            start + until,
            outbox,
            occurrence,
            start,
            arms,
        )
        if env is not None:
            return await run.execute(env, holdout)
        async with await start_time_skipping(quiet_runtime()) as own_env:
            return await run.execute(own_env, holdout)
    finally:
        store.close()


def forced_arms(plan: JourneyPlan, assignments: list[str]) -> dict[str, str]:
    """`STEP=ARM` pairs (`--variant`) checked against the plan: STEP a split or a send with
    variants, ARM one of its arms."""
    arms: dict[str, str] = {}
    for assignment in assignments:
        step_id, sep, arm = assignment.partition("=")
        if not sep or not step_id or not arm:
            raise SimulationError(f"--variant: expected STEP=ARM, got {assignment!r}")
        if step_id not in plan.step_ids:
            raise SimulationError(f"--variant: journey {plan.journey_id!r} has no step {step_id!r}")
        step = plan.step(plan.index_of(step_id))
        choices = (
            list(step.split)
            if isinstance(step, SplitStep)
            else list(step.variants or {})
            if isinstance(step, SendStep)
            else []
        )
        if not choices:
            raise SimulationError(
                f"--variant: step {step_id!r} is neither a split nor a send with variants"
            )
        if arm not in choices:
            raise SimulationError(
                f"--variant: step {step_id!r} has no arm {arm!r}; its arms: {', '.join(choices)}"
            )
        arms[step_id] = arm
    return arms


def _moment(item: ScheduledEvent, position: int, start: datetime) -> Moment:
    if item.identify is not None:
        return Identify(start + item.after, dict(item.identify))
    assert item.event is not None  # ScheduledEvent has one or the other
    return EventPayload(
        id=f"sim-{position}",
        name=item.event,
        properties=item.properties,
        timestamp=start + item.after,
    )


def _apply(store: Store, contact_id: str, moment: Moment) -> list[EventPayload]:
    """Store the event, or the identify's attributes; what the run hears of it besides: the
    `trait_changed` events an event caused, as the router routes them."""
    if isinstance(moment, Identify):
        store.upsert_contact(ContactRecord(id=contact_id, attributes=moment.attributes))
        return []
    record = EventRecord(
        contact_id=contact_id,
        name=moment.name,
        properties=moment.properties,
        timestamp=moment.timestamp,
        source="simulation",
        message_id=moment.id,
    )
    store.record_event(record)
    return [event_payload(change) for change in store.unrouted_changes(record)]


@dataclass(frozen=True)
class _Run:
    plan: JourneyPlan
    contact: ContactRecord
    activities: JourneyActivities
    trigger: EventPayload | None
    events: list[Moment]
    run_start: datetime
    end: datetime
    outbox: Path
    occurrence: str | None = None  # a date trigger's: the anniversary the run is for
    start: datetime | None = None  # --start
    arms: dict[str, str] | None = None

    def result(
        self, outcome: str, timeline: list[TimelineEntry], workflow_id: str
    ) -> SimulationResult:
        return SimulationResult(
            self.plan.journey_id,
            self.plan.version,
            self.contact.id,
            self.run_start,
            outcome,
            self._with_email_bodies(timeline, workflow_id),
            self.outbox,
            workflow_id,
            timezone=local_zone(self.plan, self.contact),
            occurrence=self.occurrence,
            entered_later=self.trigger is None and self.run_start != self.start,
        )

    def _with_email_bodies(
        self, timeline: list[TimelineEntry], workflow_id: str
    ) -> list[TimelineEntry]:
        """The run's history keeps an email's subject only; its text is in the ledger, one row
        per send of a step, in order."""
        bodies: dict[str | None, list[str | None]] = {}
        messages = self.activities.store.ledger.messages_for_contact(self.contact.id)
        for message in sorted(messages, key=lambda m: (m.created_at, m.id)):
            if message.workflow_id == workflow_id and message.channel == "email":
                bodies.setdefault(message.step_id, []).append(message.body)
        filled: list[TimelineEntry] = []
        for entry in timeline:
            if entry.type == "send" and entry.channel == "email" and bodies.get(entry.step):
                entry = entry.model_copy(update={"body": bodies[entry.step].pop(0)})
            filled.append(entry)
        return filled

    async def execute(self, env: WorkflowEnvironment, holdout: bool) -> SimulationResult:
        shift = self.run_start - await env.get_current_time()

        async def sim_now() -> datetime:
            return await env.get_current_time() + shift

        task_queue = f"simulate-{uuid.uuid4()}"
        async with build_worker(env.client, self.activities, task_queue):
            handle = await env.client.start_workflow(
                JourneyWorkflow.run,
                JourneyInput(
                    journey=self.plan.journey_id,
                    version=self.plan.version,
                    contact_id=self.contact.id,
                    trigger=self.trigger,
                    data={
                        **self.plan.start_data(self.run_start),
                        **({OCCURRENCE_DATA_KEY: self.occurrence} if self.occurrence else {}),
                    },
                    key=self.occurrence,
                    clock_shift=shift,
                    holdout=holdout,
                    arms=self.arms or None,
                ),
                id=f"{workflow_id_for(self.plan.journey_id, self.contact.id)}:{task_queue}",
                task_queue=task_queue,
            )
            for moment in self.events:
                if moment.timestamp > self.end:
                    break
                wait = moment.timestamp - await sim_now()
                if wait > timedelta(0):
                    await env.sleep(wait)
                caused = _apply(self.activities.store, self.contact.id, moment)
                if await _closed(handle):
                    break
                if isinstance(moment, Identify):
                    if self.plan.watches_contact():
                        await handle.signal(JourneyWorkflow.on_contact_changed)
                    continue
                await handle.signal(JourneyWorkflow.on_event, moment)
                if self.plan.watches_contact():
                    for change in caused:
                        await handle.signal(JourneyWorkflow.on_event, change)
            # Skip ahead a day at a time: each skip is a short call even on a busy machine, and
            # a run that ends early needs no more skipping.
            while not await _closed(handle):
                remaining = self.end - await sim_now()
                if remaining <= timedelta(0):
                    break
                await env.sleep(min(remaining, SKIP_STEP))
            if await _closed(handle):
                result = await ended_run(handle)
                return self.result(str(result.outcome), result.timeline, handle.id)
            timeline = await handle.query(JourneyWorkflow.timeline)
            await handle.terminate("simulation reached --until")
            return self.result("running", timeline, handle.id)


async def _closed(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        description = await handle.describe()
    except RPCError:
        return False
    return description.status not in (None, WorkflowExecutionStatus.RUNNING)
