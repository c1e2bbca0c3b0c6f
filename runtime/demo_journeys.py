"""The demo shop's journey history: the runs its event-triggered journeys would have made over the
shop's last months, written as the workflow would have written them (runs, run_steps, ledger
messages with their rendered subject and text), so the dashboard and `rapport report journey`
show something on `make run`.

No workflow runs: a year of journey time cannot pass on the dev server. Instead each run walks
the compiled plan step by step with the workflow's own rules and helpers:

- entry: the trigger's event in the shop's history, its `when` and the `audience` evaluated by the
  expression engine, `reentry`, the holdout drawn by the workflow's `stable_fraction`;
- conditions (`branch`, `wait_for` alternatives' `when`) evaluated on the contact's snapshot from
  the store at that moment (`contact_snapshot`: the events before it; traits as they are now);
- `wait_for`: the first matching event of the contact's history within the timeout, else the
  timeout path; `wait`: its duration; `wait_until`: the next day (approximate);
- a goal event (within its window) converts the run, an `exit_on` event exits it;
- sends: rendered with the journey's templates (`message_variables`, `render_email`/`render_sms`)
  and recorded in the ledger, emails also written by the local outbox provider (`.eml`); the
  control group's marketing sends are skipped as the activity skips them; delivery, opens and
  clicks drawn from a seeded random number generator;
- splits and content variants: the workflow's own draw (`weighted_choice`, `drawn_variant`).

Runs enter over the shop's last `HISTORY`; one that would still be in flight at the shop's end is
left out (no workflow would carry it), so every run has ended. Rendering is what costs time, so
only the messages of runs entered in the last `RENDERED` carry their subject and text. Journeys
started by a segment or by hand get no runs.
Deterministic and idempotent like the shop: run ids and message keys are fixed by the seed.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from activities.contact_context import contact_snapshot
from providers.messages import OutgoingEmail
from providers.outbox import OutboxEmailProvider
from rendering.bundle import template_event_questions
from rendering.context import message_variables
from rendering.render import RenderError, render_email, render_sms
from settings import Settings
from store import ContactRecord, EventRecord, RunRecord, Store
from store.records import RunStepRecord
from workflows.durations import parse_duration
from workflows.expressions import ExpressionContext, ExpressionError, evaluate_condition
from workflows.ids import stable_fraction, weighted_choice, workflow_id_for
from workflows.journey_workflow import drawn_variant
from workflows.model import (
    BranchStep,
    EventTrigger,
    ExitStep,
    SendStep,
    SplitStep,
    UpdateStep,
    WaitForEvent,
    WaitForStep,
    WaitStep,
    WaitUntilStep,
    WebhookStep,
    step_kind_of,
)
from workflows.plan import JourneyPlan

HISTORY = timedelta(days=150)  # runs enter in the shop's last five months
RENDERED = timedelta(days=45)  # the messages of runs entered since then carry their text
MAX_VISITS = 50  # a loop in a journey stops here (the workflow's continue-as-new is not needed)


@dataclass(frozen=True)
class DemoRuns:
    runs: int = 0
    messages: int = 0
    by_journey: dict[str, int] = field(default_factory=dict)


def _variables(event: EventRecord) -> dict[str, Any]:
    return {
        "id": event.message_id or "",
        "name": event.name,
        "properties": dict(event.properties),
        "timestamp": event.timestamp.isoformat() if event.timestamp else "",
    }


def _holds(expression: str | None, context: ExpressionContext) -> bool:
    """A condition as the workflow treats it: one that cannot be evaluated is false."""
    if expression is None:
        return True
    try:
        return evaluate_condition(expression, context)
    except ExpressionError:
        return False


@dataclass
class _Walk:
    """One run walking its plan; `now` moves as the run would have."""

    store: Store
    settings: Settings
    plan: JourneyPlan
    contact: ContactRecord
    history: list[EventRecord]  # the contact's events, oldest first
    trigger: EventRecord
    rng: random.Random
    holdout: bool
    workflow_id: str
    run_id: str
    now: datetime
    steps: dict[str, Any] = field(default_factory=dict)
    reached: list[RunStepRecord] = field(default_factory=list)
    sends: list[dict[str, Any]] = field(default_factory=list)
    render_bodies: bool = True
    emails: list[OutgoingEmail] = field(default_factory=list)

    def context(self, event: EventRecord | None = None) -> ExpressionContext:
        snapshot = contact_snapshot(
            self.store, self.contact.id, self.plan.event_questions, self.now, record=self.contact
        )
        return snapshot.context(
            self.now,
            journey=dict(self.plan.journey.data),
            trigger=_variables(self.trigger),
            steps=self.steps,
            event=_variables(event) if event is not None else None,
        )

    def events_between(self, start: datetime, end: datetime) -> Iterable[EventRecord]:
        return (e for e in self.history if e.timestamp and start < e.timestamp <= end)

    def ending(self) -> tuple[datetime, str] | None:
        """The first goal or exit_on event after entry: when, and the outcome it gives."""
        journey = self.plan.journey
        entered = self.trigger.timestamp
        assert entered is not None
        for event in self.events_between(entered, entered + HISTORY):
            assert event.timestamp is not None
            for exit_on in journey.exit_on:
                if event.name == exit_on.event and _holds(exit_on.when, self.context(event)):
                    return event.timestamp, "exited"
            goal = journey.goal
            if goal is not None and event.name == goal.event:
                late = goal.within is not None and event.timestamp - entered > goal.within
                if not late and _holds(goal.when, self.context(event)):
                    return event.timestamp, "converted"
        return None

    def walk(self) -> tuple[str, datetime]:
        """Walk from the first step; the run's outcome and when it ended."""
        ends = self.ending()
        index: int | None = 0
        seq = 0
        while index is not None and seq < MAX_VISITS:
            if ends is not None and ends[0] <= self.now:
                return ends[1], ends[0]
            step = self.plan.step(index)
            step_id = self.plan.step_ids[index]
            seq += 1
            reached = self.now
            variant = None
            match step:
                case SendStep():
                    self.send(step_id, step)
                    index = self.plan.following(index)
                case WaitStep():
                    self.now += step.wait
                    index = self.plan.following(index)
                case WaitUntilStep():
                    self.now += timedelta(days=1)
                    index = self.plan.following(index)
                case WaitForStep():
                    index = self.wait_for(index, step_id, step)
                case BranchStep():
                    index = self.branch(index, step_id, step)
                case SplitStep():
                    variant = self.split(step_id, step)
                    index = self.plan.index_of(variant)
                case UpdateStep() | WebhookStep():
                    index = self.plan.following(index)
                case ExitStep():
                    index = None
            self.reached.append(
                RunStepRecord(
                    step_id=step_id,
                    kind=step_kind_of(step) or "step",
                    reached_at=reached,
                    seq=seq,
                    variant=variant,
                )
            )
            if isinstance(step, ExitStep):
                return step.exit or "completed", self.now
            self.now += timedelta(seconds=30)
        if ends is not None and ends[0] <= self.now:
            return ends[1], ends[0]
        return "completed", self.now

    def split(self, step_id: str, step: SplitStep) -> str:
        """The arm the workflow would choose: the same stable fraction of the weights."""
        chosen = weighted_choice(
            dict(step.split), "split", self.plan.journey_id, step_id, self.contact.id
        )
        self.steps[step_id] = {"variant": chosen}
        return chosen

    def wait_for(self, index: int, step_id: str, step: WaitForStep) -> int | None:
        deadline = self.now + step.timeout
        trigger = self.trigger.properties
        for event in self.events_between(self.now, deadline):
            for alternative in step.alternatives():
                if not isinstance(alternative, WaitForEvent) or event.name != alternative.event:
                    continue
                if any(event.properties.get(key) != trigger.get(key) for key in alternative.match):
                    continue
                if _holds(alternative.when, self.context(event)):
                    assert event.timestamp is not None
                    self.now = event.timestamp
                    self.steps[step_id] = {"result": "event", "event": _variables(event)}
                    return self.plan.jump(alternative.next, index)
        self.now = deadline
        self.steps[step_id] = {"result": "timeout", "event": None}
        return self.plan.jump(step.on_timeout, index)

    def branch(self, index: int, step_id: str, step: BranchStep) -> int | None:
        context = self.context()
        for case in step.branch:
            if _holds(case.when, context):
                self.steps[step_id] = {"goto": case.goto}
                return self.plan.index_of(case.goto)
        target = self.plan.jump(step.else_, index)
        self.steps[step_id] = {"goto": self.plan.step_ids[target] if target is not None else None}
        return target

    def send(self, step_id: str, step: SendStep) -> None:
        key = hashlib.sha256(f"{self.workflow_id}|{self.run_id}|{step_id}".encode()).hexdigest()
        key = key[:32]
        to = self.contact.email if step.send == "email" else self.contact.phone
        subject = body = None
        # A content experiment's variant, drawn as the workflow draws it (no winner: a demo
        # never reaches one).
        variant = drawn_variant(step, self.plan.journey_id, step_id, self.contact.id)
        if self.holdout and step.category == "marketing":
            status, reason = "skipped", "holdout: the contact is in the journey's control group"
        elif not to:
            missing = "email address" if step.send == "email" else "phone number"
            status, reason = "skipped", f"the contact has no {missing}"
        else:
            try:
                if self.render_bodies:
                    subject, body = self.render(step, key, variant)
                status, reason = self.delivery(step.send), None
            except RenderError as error:  # the send activity fails the message the same way
                status, reason = "failed", str(error)
        self.sends.append(
            {
                "key": key,
                "contact_id": self.contact.id,
                "channel": step.send,
                "category": step.category,
                "workflow_id": self.workflow_id,
                "step_id": step_id,
                "journey": self.plan.journey_id,
                "template": self.plan.template_for(step, variant).name,
                "variant": variant,
                "recipient": to,
                "provider": "outbox" if reason is None else None,
                "subject": subject,
                "body": body,
                "status": status,
                "reason": reason,
                "created_at": self.now,
            }
        )
        self.steps[step_id] = {"status": status, "to": to}
        if variant is not None:
            self.steps[step_id]["variant"] = variant

    def write_messages(self) -> None:
        """The ledger rows, and the rendered emails as the local outbox keeps them (the
        dashboard shows a contact's HTML from there)."""
        for send in self.sends:
            self.store.ledger.claim(**send)
        outbox = OutboxEmailProvider(self.settings.outbox_dir)
        for email in self.emails:
            outbox.send_sync(email)

    def render(self, step: SendStep, key: str, variant: str | None) -> tuple[str | None, str]:
        bundle = self.plan.template_for(step, variant)
        snapshot = contact_snapshot(
            self.store,
            self.contact.id,
            template_event_questions(bundle),
            self.now,
            record=self.contact,
        )
        variables = message_variables(
            snapshot,
            journey_data=dict(self.plan.journey.data),
            trigger=_variables(self.trigger),
            steps=self.steps,
            now=self.now,
            settings=self.settings,
            message_key=key,
        )
        if step.send == "email":
            email = render_email(bundle, variables, locale=self.contact.locale)
            self.emails.append(
                OutgoingEmail(
                    idempotency_key=key,
                    to=self.contact.email or "",
                    from_=self.settings.email_from,
                    subject=email.subject,
                    html=email.html,
                    text=email.text,
                    preheader=email.preheader,
                )
            )
            return email.subject, email.text
        sms = render_sms(
            bundle, variables, locale=self.contact.locale, marketing=step.category == "marketing"
        )
        return None, sms.body

    def delivery(self, channel: str) -> str:
        """How far a sent message got, as the providers' callbacks would have said."""
        roll = self.rng.random()
        if roll < 0.02:
            return "bounced"
        if channel == "sms" or roll < 0.45:
            return "delivered"
        return "opened" if roll < 0.85 else "clicked"


def _reenters(plan: JourneyPlan, last: datetime | None, at: datetime) -> bool:
    reentry = plan.journey.reentry
    if last is None or reentry == "always":
        return True
    if reentry == "never":
        return False
    return at - last >= parse_duration(reentry)


def seed_demo_runs(
    store: Store,
    settings: Settings,
    plans: dict[str, JourneyPlan],
    people: list[ContactRecord],
    events: Iterable[EventRecord],
    seed: int,
    end: datetime,
) -> DemoRuns:
    """Write the runs the event-triggered journeys of `plans` would have made for these
    contacts over their history (see the module's description)."""
    contacts = {person.id: person for person in people}
    history: dict[str, list[EventRecord]] = defaultdict(list)
    for event in events:
        history[event.contact_id].append(event)
    for events_of_one in history.values():
        events_of_one.sort(key=lambda e: (e.timestamp, e.message_id or ""))
    rng = random.Random(f"demo-runs:{seed}")
    runs = messages = 0
    by_journey: dict[str, int] = {}
    for journey_id, plan in sorted(plans.items()):
        trigger = plan.journey.trigger
        if not isinstance(trigger, EventTrigger) or plan.journey.status == "paused":
            continue
        made = 0
        for contact_id in sorted(history):
            contact = contacts.get(contact_id)
            if contact is None:
                continue
            last_entry: datetime | None = None
            for event in history[contact_id]:
                at = event.timestamp
                if event.name != trigger.event or at is None:
                    continue
                if not end - HISTORY <= at < end:
                    continue
                if not _reenters(plan, last_entry, at):
                    continue
                walk = _Walk(
                    store=store,
                    settings=settings,
                    plan=plan,
                    contact=contact,
                    history=history[contact_id],
                    trigger=event,
                    rng=rng,
                    holdout=plan.journey.holdout > 0
                    and stable_fraction("holdout", journey_id, contact_id) * 100
                    < plan.journey.holdout,
                    workflow_id=workflow_id_for(journey_id, contact_id, _key(trigger, event)),
                    run_id=f"demo-{seed}-{at:%Y%m%d%H%M%S}",
                    now=at,
                )
                context = walk.context(event)
                if not _holds(trigger.when, context) or not _holds(plan.journey.audience, context):
                    continue
                last_entry = at
                if store.get_run(walk.workflow_id, walk.run_id) is not None:
                    continue  # seeded before
                walk.render_bodies = at >= end - RENDERED
                outcome, ended = walk.walk()
                if ended >= end:
                    continue  # it would still be running: no workflow carries it, so leave it out
                store.record_run(
                    RunRecord(
                        workflow_id=walk.workflow_id,
                        run_id=walk.run_id,
                        contact_id=contact_id,
                        journey=journey_id,
                        version=plan.version,
                        entered_at=at,
                        holdout=walk.holdout,
                    )
                )
                store.record_run_steps(walk.workflow_id, walk.run_id, walk.reached)
                variant = next((s.variant for s in walk.reached if s.variant), None)
                if variant is not None:
                    store.update_run(walk.workflow_id, run_id=walk.run_id, variant=variant)
                store.end_run(
                    walk.workflow_id,
                    outcome=outcome,
                    status="completed",
                    run_id=walk.run_id,
                    ended_at=ended,
                )
                walk.write_messages()
                messages += len(walk.sends)
                made += 1
        by_journey[journey_id] = made
        runs += made
    return DemoRuns(runs=runs, messages=messages, by_journey=by_journey)


def _key(trigger: EventTrigger, event: EventRecord) -> str | None:
    if trigger.key is None:
        return None
    value: Any = {"properties": event.properties, "name": event.name}
    for part in trigger.key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return None if value is None else str(value)
