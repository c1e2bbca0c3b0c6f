"""`JourneyWorkflow`: one contact's path through one compiled journey.

A small interpreter over the frozen `JourneyPlan` it receives as input: one handler per step kind
behind a `match` that ends in `assert_never`, so a new step kind fails type-checking until it has
a handler. Everything here is deterministic — the clock is `workflow.now()`, splits hash the
contact id, expressions are pure functions of the contact snapshot — and all I/O (the store,
rendering, providers, time zones) happens in activities.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, assert_never

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.journey_activities import PROVIDER_ANSWERED, SEND_ATTEMPTS, JourneyActivities
    from workflows.contracts import (
        ContactSnapshot,
        EventPayload,
        EventsInWindowInput,
        JourneyInput,
        JourneyResult,
        LoadContactInput,
        MessageContext,
        OpenRun,
        PlanRef,
        ReachedStep,
        RunEnded,
        RunOpened,
        RunProgress,
        RunStarted,
        RunState,
        RunStatus,
        RunVariant,
        SendOutcome,
        SendRequest,
        StepsReached,
        TimelineEntry,
        UpdateContactInput,
        WaitUntilInput,
        WebhookOutcome,
        WebhookRequest,
    )
    from workflows.durations import format_duration, parse_duration
    from workflows.expressions import (
        ExpressionContext,
        ExpressionError,
        evaluate_condition,
        render_value,
    )
    from workflows.ids import ledger_key, weighted_choice
    from workflows.model import (
        BranchStep,
        CalendarTime,
        EventCondition,
        ExitStep,
        SendStep,
        SplitStep,
        Step,
        UpdateStep,
        WaitForAlternative,
        WaitForCondition,
        WaitForEvent,
        WaitForStep,
        WaitStep,
        WaitUntilStep,
        WebhookStep,
        step_kind_of,
    )
    from workflows.plan import TRAIT_CHANGED, JourneyPlan, in_holdout

# Steps without a wait in one workflow task; the compiler rejects wait-less loops, so hitting
# this means a bug, and failing the task beats spinning.
MAX_STEPS_PER_ACTIVATION = 500
# Continue as new well before Temporal's 50k-event history limit.
HISTORY_EVENTS_BEFORE_CONTINUE = 8_000
SEEN_EVENT_IDS_KEPT = 1_000
TIMELINE_KEPT = 500
# Since this patch a run opens with one local activity (plan and contact), records its entry,
# steps, split arms and end together at each wait and at the end, and so writes two to four
# fewer markers into its history; runs that started before it replay the older sequence.
LEAN_HISTORY = "lean-history"
# Runs start as this workflow type: after a wait the contact is reloaded only when a step
# next reads it (JourneyV4: a wake-up that goes straight to a send, which reads the contact
# itself, runs one local activity fewer). Runs of "JourneyV3" finish on `JourneyV3Workflow`.
# Since JourneyV3 a send's first attempt is a local activity.
# Runs of the types before it finish on their own classes: "JourneyV2" (every send a regular
# activity) on `JourneyV2Workflow`, "JourneyWorkflow" on `LegacyJourneyWorkflow`. New types
# rather than patches: a patch costs every run its marker and the SDK's search-attribute update
# (~1 KB). JourneyV2 carried no patch marker, a slimmer plan and contact, a result without the
# timeline, and left a timer uncancelled when the run ended; JourneyV3 keeps all of that.
WORKFLOW_TYPE = "JourneyV4"
V3_WORKFLOW_TYPE = "JourneyV3"
V2_WORKFLOW_TYPE = "JourneyV2"
LEGACY_WORKFLOW_TYPE = "JourneyWorkflow"

# Short store reads and writes run as local activities: in the worker that runs the workflow,
# without a round trip through the server for each (a start reaches its first send ~100 ms
# sooner). Webhooks, and sends after a failed first attempt, are regular activities: they
# retry for long, on any worker.
QUICK = workflow.LocalActivityConfig(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
)
# Matched to the providers' HTTP timeout (15 s for connecting and for each read,
# providers.HTTP_TIMEOUT_SECONDS): two such waits and the store fit in 30 s. The activities
# heartbeat while they run, so a worker that died mid-send is noticed within 10 s and the send
# retried, not after the whole start-to-close timeout.
SEND_TIMEOUT = timedelta(seconds=30)
SENDING = workflow.ActivityConfig(
    start_to_close_timeout=SEND_TIMEOUT,
    heartbeat_timeout=timedelta(seconds=10),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=10),
        maximum_attempts=SEND_ATTEMPTS,
    ),
)
# A send's first attempt (JourneyV3): one local activity attempt, no local retries, in the
# worker that runs the workflow (one workflow task for the send instead of two, no activity
# task through the server's matching, five history events fewer). Its outcome is final as the
# regular activity's would be; if it raises (a provider's 429, 5xx or timeout, the store
# unavailable, a bug), the regular activity takes over with SENDING's retries and heartbeats.
# The same start-to-close as SENDING's: two provider waits and the store.
SENDING_LOCALLY = workflow.LocalActivityConfig(
    start_to_close_timeout=SEND_TIMEOUT,
    retry_policy=RetryPolicy(maximum_attempts=1),
)


@dataclass(frozen=True)
class Fired:
    """The alternative of a `wait_for` that decided the path (its position in the list)."""

    position: int
    event: EventPayload | None = None
    earlier: bool = False  # received before the wait, in its `since` window


def _waited_name(alternative: WaitForAlternative) -> str:
    return alternative.event if isinstance(alternative, WaitForEvent) else "a condition"


def drawn_variant(step: SendStep, journey_id: str, step_id: str, contact_id: str) -> str | None:
    """A content experiment's variant for the contact, drawn like a split's arm (None: the
    send has no variants)."""
    if not step.variants:
        return None
    weights = {name: arm.weight for name, arm in step.variants.items()}
    return weighted_choice(weights, "variant", journey_id, step_id, contact_id)


def _application_errors(error: BaseException) -> list[ApplicationError]:
    """The application errors in `error`'s chain of causes, outermost first."""
    found: list[ApplicationError] = []
    cause: BaseException | None = error
    while cause is not None and len(found) < 10:
        if isinstance(cause, ApplicationError):
            found.append(cause)
        cause = cause.cause if isinstance(cause, FailureError) else None
    return found


def _provider_answer(error: FailureError) -> dict[str, Any] | None:
    """The provider's answer a failed local send attempt carries (`ProviderAnswer`), if any."""
    for cause in _application_errors(error):
        if cause.type == PROVIDER_ANSWERED and cause.details and isinstance(cause.details[0], dict):
            return cause.details[0]
    return None


def _retry_delay(error: FailureError) -> timedelta | None:
    """When the failed attempt said to try again (`next_retry_delay`), if it did."""
    delays = [cause.next_retry_delay for cause in _application_errors(error)]
    return next((delay for delay in delays if delay), None)


def _reads_contact(step: Step) -> bool:
    """Whether a step reads the contact: its expressions, or conditions checked while it
    waits. A send reads it only for a `to:` (the send activity loads the contact itself)."""
    match step:
        case SendStep():
            return step.to is not None
        case WaitStep() | SplitStep() | ExitStep():
            return False
        case WaitUntilStep():
            return not isinstance(step.wait_until, CalendarTime)
        case _:
            return True


class _Stop(Exception):
    """A goal or exit_on event arrived: the run ends with `outcome`."""


@workflow.defn(name=WORKFLOW_TYPE)
class JourneyWorkflow:
    """Runs start as `JourneyV4`; `JourneyV3Workflow`, `JourneyV2Workflow` and
    `LegacyJourneyWorkflow` (below) finish and replay the runs of the types before it. See
    docs/workflows.md."""

    # Set on the legacy type: the `lean-history` patch and the larger history of its runs.
    LEGACY: ClassVar[bool] = False
    # A send's first attempt as a local activity (JourneyV3); the types before it schedule the
    # regular activity at once.
    LOCAL_SENDS: ClassVar[bool] = True
    # After a wait, the contact reloaded when a step next reads it (JourneyV4); the types
    # before it reload it as soon as the wait ends.
    LAZY_CONTACT: ClassVar[bool] = True

    @workflow.init
    def __init__(self, input: JourneyInput) -> None:
        # Set before any handler runs: a signal in a continued run's first task (a `pause`,
        # say) lands in the carried state, not in a fresh one that `run` would then replace.
        self._input = input
        self._plan: JourneyPlan | None = None
        # The run's whole state; `continue_as_new` carries exactly this.
        self._state = input.state or RunState(
            entry_id=workflow.info().run_id, entered_at=self._now()
        )
        # Not state: events for the wait_for in progress (a wait never spans continue_as_new)
        # and the contact as last loaded (reloaded when a run starts).
        self._inbox: list[EventPayload] = []
        self._snapshot = ContactSnapshot(found=False)
        # Set by `contact_changed` and `trait_changed`: a wait on a condition checks again.
        self._contact_changed = False
        # JourneyV4: a wait ended since the contact was loaded; the next step that reads it
        # reloads it first (`_contact_after_wait`).
        self._contact_stale = False
        self._lean = not self.LEGACY  # the legacy type: set by `run` (workflow.patched)
        self._refusal: str | None = None  # JourneyV2: why `open_run` found it out of audience
        self._holdout = False  # JourneyV2: whether `open_run` drew the contact into the holdout

    # --- the run ------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        # Runs that started before LEAN_HISTORY took the older sequence of local activities
        # (and replay it): see docs/workflows.md.
        if self.LEGACY:
            self._lean = workflow.patched(LEAN_HISTORY)
        plan = await self._open()
        state = self._state
        if input.state is None:
            if not self._enters():
                return await self._finish("not_entered")
            started = RunStarted(
                workflow_id=workflow.info().workflow_id,
                run_id=state.entry_id,
                contact_id=input.contact_id,
                journey=plan.journey_id,
                version=plan.version,
                entered_at=self._now(),
                holdout=state.holdout,
                data=input.data,
            )
            if self._lean:  # recorded with the first steps, at the first wait or the end
                state.unrecorded_start = started
            else:
                await workflow.execute_local_activity_method(
                    JourneyActivities.record_run_started, started, **QUICK
                )
            self._note(
                TimelineEntry(
                    at=self._now(), type="enter", result="holdout" if state.holdout else None
                )
            )
        steps_this_task = 0
        last_task_at = workflow.now()
        while state.index is not None and state.outcome is None:
            if workflow.now() != last_task_at:
                last_task_at, steps_this_task = workflow.now(), 0
            steps_this_task += 1
            if steps_this_task > MAX_STEPS_PER_ACTIVATION:
                raise RuntimeError(  # fails the workflow task, visibly, instead of spinning
                    f"more than {MAX_STEPS_PER_ACTIVATION} steps without a wait"
                )
            if self._should_continue_as_new():
                workflow.continue_as_new(self._continued_input())
            try:
                if state.paused and isinstance(plan.step(state.index), SendStep):
                    await self._hold_while_paused()
                    continue
                state.index = await self._execute(state.index)
            except _Stop:
                break
            except asyncio.CancelledError:
                # Cancelled from the CLI, the API or the Temporal UI: record it, then let the
                # cancellation end the workflow as cancelled.
                await asyncio.shield(self._finish("cancelled"))
                raise
        return await self._finish(state.outcome or "completed")

    async def _open(self) -> JourneyPlan:
        """The plan by reference and the contact: a local activity reads them (the plan's
        steps, no template sources) from the store, where the plan was written before the run
        started. One local activity since LEAN_HISTORY, two before."""
        input = self.input
        if self._lean:
            opened: RunOpened = await workflow.execute_local_activity_method(
                JourneyActivities.open_run,
                OpenRun(
                    journey=input.journey,
                    version=input.version,
                    contact_id=input.contact_id,
                    now=self._now(),
                    slim=not self.LEGACY,
                    entering=input.state is None,
                    trigger=input.trigger,
                    data=input.data,
                    holdout=input.holdout,
                    start=self._state.index or 0,
                ),
                **QUICK,
            )
            self._refusal = opened.refusal if opened.refused else None
            self._holdout = opened.holdout
            plan = (
                JourneyPlan.model_validate(opened.plan)
                if self.LEGACY
                else JourneyPlan.from_run_document(input.journey, input.version, opened.plan)
            )
            self._start(plan)
            self._snapshot = opened.contact
            return plan
        document = await workflow.execute_local_activity_method(
            JourneyActivities.load_plan,
            PlanRef(journey=input.journey, version=input.version),
            **QUICK,
        )
        plan = JourneyPlan.model_validate(document)
        self._start(plan)
        await self._refresh_contact()
        return plan

    def _start(self, plan: JourneyPlan) -> None:
        self._plan = plan
        input = self.input
        if input.state is None and not self.LEGACY:  # JourneyV2: `open_run` drew it
            self._state.holdout = self._holdout
        elif input.state is None:
            self._state.holdout = in_holdout(plan, input.contact_id, input.holdout)
        # Events that arrived before the plan was known may end the run (goal, exit_on).
        for event in self._inbox:
            self._check_ends_run(event)

    def _enters(self) -> bool:
        audience = self.plan.journey.audience
        if not self._snapshot.found:
            self._note(TimelineEntry(at=self._now(), type="error", reason="unknown contact"))
            return False
        if self._refusal is not None:  # JourneyV2: `open_run` judged the audience
            if self._refusal:
                self._note(TimelineEntry(at=self._now(), type="error", reason=self._refusal))
            return False
        if audience is None:
            return True
        return self._condition(audience, None, step=None)

    async def _finish(self, outcome: str) -> JourneyResult:
        state = self._state
        state.outcome = outcome
        state.index = None
        state.waiting_for = state.waiting_until = None
        now = self._now()
        if outcome != "not_entered":
            ended = RunEnded(
                workflow_id=workflow.info().workflow_id,
                run_id=state.entry_id,
                outcome=outcome,
                ended_at=now,
            )
            if self._lean:
                await self._record_progress(ended)
            else:
                await self._record_steps()
                await workflow.execute_local_activity_method(
                    JourneyActivities.record_run_ended, ended, **QUICK
                )
        cause = state.ended_by
        self._note(
            TimelineEntry(
                at=now,
                type="exit",
                outcome=outcome,
                event=cause.name if cause else None,
                properties=dict(cause.properties) if cause else None,
            )
        )
        legacy = self.LEGACY
        return JourneyResult(
            journey=self.plan.journey_id if legacy else None,
            version=self.plan.version if legacy else None,
            contact_id=self.input.contact_id if legacy else None,
            outcome=outcome,
            entered_at=(state.entered_at or now) if legacy else None,
            ended_at=now if legacy else None,
            holdout=state.holdout,
            # The legacy type's result carried the timeline; a JourneyV2 run's is the
            # `timeline` query, which answers after the run has ended too (replayed).
            timeline=state.timeline if legacy else None,
        )

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > HISTORY_EVENTS_BEFORE_CONTINUE
        )

    def _continued_input(self) -> JourneyInput:
        """The input of the next run: the same, with the whole state (lists trimmed)."""
        state = self._state.model_copy(
            update={
                "seen_event_ids": self._state.seen_event_ids[-SEEN_EVENT_IDS_KEPT:],
                "timeline": self._state.timeline[-TIMELINE_KEPT:],
            }
        )
        return self.input.model_copy(update={"state": state})

    async def _hold_while_paused(self) -> None:
        """A paused journey holds its runs before their next send, for as long as it takes;
        the hold also ends when the history is long enough to continue as new (paused)."""
        state = self._state
        await self._record_steps()
        state.waiting_for = "resume"
        try:
            await workflow.wait_condition(
                lambda: (
                    not state.paused or state.outcome is not None or self._should_continue_as_new()
                )
            )
        finally:
            state.waiting_for = None

    # --- one handler per step kind ------------------------------------------------------------

    async def _execute(self, index: int) -> int | None:
        step = self.plan.step(index)
        step_id = self.plan.step_ids[index]
        if self._contact_stale and _reads_contact(step):
            await self._refresh_contact()
        self._state.visits[step_id] = self._state.visits.get(step_id, 0) + 1
        self._state.unrecorded_steps.append(
            ReachedStep(
                step_id=step_id,
                kind=step_kind_of(step) or "step",
                at=self._now(),
                seq=sum(self._state.visits.values()),
            )
        )
        match step:
            case SendStep():
                return await self._send(index, step_id, step)
            case WaitStep():
                return await self._wait(index, step_id, step)
            case WaitUntilStep():
                return await self._wait_until(index, step_id, step)
            case WaitForStep():
                return await self._wait_for(index, step_id, step)
            case BranchStep():
                return self._branch(index, step_id, step)
            case SplitStep():
                return await self._split(step_id, step)
            case UpdateStep():
                return await self._update(index, step_id, step)
            case WebhookStep():
                return await self._webhook(index, step_id, step)
            case ExitStep():
                self._state.outcome = step.exit or "completed"
                return None
            case _:
                assert_never(step)

    async def _send(self, index: int, step_id: str, step: SendStep) -> int | None:
        to = self._value(step.to, step_id) if step.to else None
        method = (
            JourneyActivities.send_email if step.send == "email" else JourneyActivities.send_sms
        )
        # A content experiment: the contact's variant, drawn like a split's arm (or forced by
        # the simulator). The send activity swaps in the winner once one is decided.
        forced = self._forced_arm(step_id) if step.variants else None
        variant = forced or drawn_variant(
            step, self.plan.journey_id, step_id, self.input.contact_id
        )
        while True:
            # By reference: the activity reads the step's channel, template, category and the
            # journey's settings and data from the plan version (`JourneyPlan.send_fields`).
            request = SendRequest(
                idempotency_key=self._send_key(step_id),
                # The activity knows the workflow calling it (the legacy type named it).
                workflow_id=workflow.info().workflow_id if self.LEGACY else None,
                journey=self.plan.journey_id,
                version=self.plan.version,
                step_id=step_id,
                contact_id=self.input.contact_id,
                to=str(to) if to is not None else None,
                context=MessageContext(
                    trigger=self.input.trigger.as_variables()
                    if self.input.trigger and self._templates_read("trigger")
                    else None,
                    steps=(self._state.steps or None) if self._templates_read("steps") else None,
                    now=self._now(),
                ),
                data=self.input.data or None,
                holdout=self._state.holdout,
                variant=variant,
                variant_forced=True if forced else None,
            )
            outcome = await self._deliver(method, request)
            if outcome.status != "deferred" or outcome.retry_at is None:
                break
            self._note(
                TimelineEntry(
                    at=self._now(),
                    type="delay",
                    step=step_id,
                    reason=outcome.reason,
                    until=outcome.retry_at,
                )
            )
            await self._sleep_until(outcome.retry_at, step.send)
            await self._contact_after_wait()
        self._state.steps[step_id] = {"status": outcome.status, "to": outcome.to}
        if outcome.variant is not None:
            self._state.steps[step_id]["variant"] = outcome.variant
        self._note(
            TimelineEntry(
                at=self._now(),
                type="send",
                step=step_id,
                channel=step.send,
                to=outcome.to,
                subject=outcome.subject,
                body=outcome.body,
                status=outcome.status,
                reason=outcome.reason,
                variant=outcome.variant,
            )
        )
        return self.plan.following(index)

    async def _deliver(self, method: Any, request: SendRequest) -> SendOutcome:
        """A send's outcome: its local attempt's (JourneyV3), or when that raised, the regular
        activity's, which the provider's answer to the local attempt is handed to when the
        attempt could not record it (`SendRequest.answered`)."""
        if self.LOCAL_SENDS:
            try:
                local: SendOutcome = await workflow.execute_local_activity_method(
                    method, request, **SENDING_LOCALLY
                )
                return local
            except FailureError as error:  # a local activity's failure is raised as it is
                if isinstance(error, CancelledError):  # as the regular activity's below
                    return SendOutcome(status="failed", reason=str(error))
                delay = _retry_delay(error)
                if delay:
                    # The provider said when to try again (a 429's or 503's Retry-After): the
                    # regular activity's first attempt waits as its retry would have.
                    await workflow.sleep(delay)
                # The run's clock as the regular activity is scheduled (its attempts add their
                # own delays to it: quiet hours are checked at the moment of sending).
                context = request.context.model_copy(update={"now": self._now()})
                answered = _provider_answer(error)
                request = request.model_copy(update={"answered": answered, "context": context})
        try:
            outcome: SendOutcome = await workflow.execute_activity_method(
                method, request, **SENDING
            )
        except ActivityError as error:
            outcome = SendOutcome(status="failed", reason=str(error.cause or error))
        return outcome

    async def _wait(self, index: int, step_id: str, step: WaitStep) -> int | None:
        until = self._now() + step.wait
        await self._sleep_until(until, "time")
        self._note(TimelineEntry(at=self._now(), type="wait", step=step_id))
        await self._contact_after_wait()
        return self.plan.following(index)

    async def _wait_until(self, index: int, step_id: str, step: WaitUntilStep) -> int | None:
        days: int | None = None
        if isinstance(step.wait_until, CalendarTime):
            when: Any = step.wait_until.time
            days = step.wait_until.days
        else:
            when = self._value(step.wait_until, step_id)
        if when is None:  # the error is on the timeline: no moment to wait for, so go on
            return self.plan.following(index)
        if isinstance(when, datetime):
            when = when.isoformat()
        target: datetime = await workflow.execute_local_activity_method(
            JourneyActivities.resolve_wait_until,
            WaitUntilInput(
                contact_id=self.input.contact_id,
                when=str(when),
                days=days,
                offset=step.offset,
                fallback_timezone=self.plan.journey.settings.timezone,
                now=self._now(),
            ),
            **QUICK,
        )
        if target > self._now():
            await self._sleep_until(target, "time")
        self._note(TimelineEntry(at=self._now(), type="wait_until", step=step_id, until=target))
        await self._contact_after_wait()
        return self.plan.following(index)

    async def _wait_for(self, index: int, step_id: str, step: WaitForStep) -> int | None:
        if not isinstance(step.wait_for, str) or step.since is not None:
            return await self._wait_for_first(index, step_id, step)
        # One event, as recorded histories did it: these commands must not change.
        deadline = self._now() + step.timeout
        cursor = [len(self._inbox)]  # only events that arrive from now on count
        found: list[EventPayload] = []

        def arrived() -> bool:
            for event in self._inbox[cursor[0] :]:
                if self._event_matches(event, step):
                    found.append(event)
                    return True
            cursor[0] = len(self._inbox)
            return False

        self._state.waiting_for, self._state.waiting_until = step.wait_for, deadline
        try:
            await self._wait_condition(arrived, deadline)
        finally:
            self._state.waiting_for = self._state.waiting_until = None
        if found:
            event = found[0]
            self._state.steps[step_id] = {"result": "event", "event": event.as_variables()}
            self._note(TimelineEntry(at=self._now(), type="wait_for", step=step_id, result="event"))
            await self._contact_after_wait()
            return self.plan.following(index)
        self._state.steps[step_id] = {"result": "timeout", "event": None}
        self._note(TimelineEntry(at=self._now(), type="wait_for", step=step_id, result="timeout"))
        await self._contact_after_wait()
        return self.plan.jump(step.on_timeout, index)

    async def _wait_for_first(self, index: int, step_id: str, step: WaitForStep) -> int | None:
        """The first alternative to happen decides the path: an event (one already received
        in the `since` window first), or a condition true now or after the contact changes."""
        alternatives = step.alternatives()
        deadline = self._now() + step.timeout
        cursor = len(self._inbox)  # events from now on; the store answers for earlier ones
        self._contact_changed = False  # a change from now on; the refresh below sees earlier
        fired: list[Fired] = []

        def arrived() -> bool:
            nonlocal cursor
            for event in self._inbox[cursor:]:
                chosen = self._alternative_for(event, alternatives)
                if chosen is not None:
                    fired.append(Fired(chosen, event))
                    return True
            cursor = len(self._inbox)
            return self._contact_changed

        def condition_holds() -> bool:
            for position, alternative in enumerate(alternatives):
                if isinstance(alternative, WaitForCondition) and self._condition(
                    alternative.condition, None, step=step_id
                ):
                    fired.append(Fired(position))
                    return True
            return False

        earlier = await self._received_since(step) if step.since is not None else []
        for event in earlier:
            chosen = self._alternative_for(event, alternatives)
            if chosen is not None:
                fired.append(Fired(chosen, event, earlier=True))
                break
        if not fired and step.has_condition():
            await self._refresh_contact()
            condition_holds()
        names = [_waited_name(alternative) for alternative in alternatives]
        self._state.waiting_for, self._state.waiting_until = " or ".join(names), deadline
        try:
            while not fired:
                await self._wait_condition(arrived, deadline)
                if fired or not self._contact_changed:
                    break  # an event, or the deadline
                self._contact_changed = False
                await self._refresh_contact()
                condition_holds()
        finally:
            self._state.waiting_for = self._state.waiting_until = None
        return await self._after_wait_for(index, step_id, step, fired[0] if fired else None)

    async def _after_wait_for(
        self,
        index: int,
        step_id: str,
        step: WaitForStep,
        fired: Fired | None,
    ) -> int | None:
        """`steps.ID` = {result, event, branch}; then the fired alternative's path."""
        if fired is None:
            self._state.steps[step_id] = {"result": "timeout", "event": None, "branch": None}
            self._note(
                TimelineEntry(at=self._now(), type="wait_for", step=step_id, result="timeout")
            )
            await self._contact_after_wait()
            return self.plan.jump(step.on_timeout, index)
        event = fired.event
        alternative = step.alternatives()[fired.position]
        result = "event" if event is not None else "condition"
        self._state.steps[step_id] = {
            "result": result,
            "event": event.as_variables() if event is not None else None,
            "branch": fired.position + 1,
        }
        if isinstance(alternative, WaitForCondition):
            reason: str | None = alternative.condition
        elif fired.earlier and event is not None:
            reason = f"received {event.timestamp.isoformat()}, before the wait (since {step.since})"
        else:
            reason = None
        self._note(
            TimelineEntry(
                at=self._now(),
                type="wait_for",
                step=step_id,
                result=result,
                event=event.name if event is not None else None,
                reason=reason,
            )
        )
        await self._contact_after_wait()
        return self.plan.jump(alternative.next, index)

    def _branch(self, index: int, step_id: str, step: BranchStep) -> int | None:
        for case in step.branch:
            if self._condition(case.when, None, step=step_id):
                self._state.steps[step_id] = {"goto": case.goto}
                self._note(
                    TimelineEntry(at=self._now(), type="branch", step=step_id, result=case.goto)
                )
                return self.plan.index_of(case.goto)
        target = self.plan.jump(step.else_, index)
        chosen = self.plan.step_ids[target] if target is not None else None
        self._state.steps[step_id] = {"goto": chosen}
        self._note(
            TimelineEntry(at=self._now(), type="branch", step=step_id, result=chosen or "end")
        )
        return target

    async def _split(self, step_id: str, step: SplitStep) -> int | None:
        chosen = self._forced_arm(step_id) or weighted_choice(
            dict(step.split), "split", self.plan.journey_id, step_id, self.input.contact_id
        )
        self._state.variant = chosen
        self._state.steps[step_id] = {"variant": chosen}
        if self._lean:  # recorded with the next steps
            self._state.unrecorded_variant = chosen
        else:
            await workflow.execute_local_activity_method(
                JourneyActivities.record_run_variant,
                RunVariant(
                    workflow_id=workflow.info().workflow_id,
                    run_id=self._state.entry_id,
                    variant=chosen,
                ),
                **QUICK,
            )
        self._note(TimelineEntry(at=self._now(), type="split", step=step_id, result=chosen))
        return self.plan.index_of(chosen)

    async def _update(self, index: int, step_id: str, step: UpdateStep) -> int | None:
        attributes: dict[str, Any] = {}
        for key, value in step.update.items():
            try:
                attributes[key] = render_value(value, self._context(None))
            except ExpressionError as error:
                # One attribute the contact's data cannot give keeps its stored value; the
                # others are written, and the run goes on.
                reason = f"{key}: {error} (attribute left unchanged)"
                self._note(TimelineEntry(at=self._now(), type="error", step=step_id, reason=reason))
        if attributes:
            await workflow.execute_local_activity_method(
                JourneyActivities.update_contact,
                UpdateContactInput(contact_id=self.input.contact_id, attributes=attributes),
                **QUICK,
            )
        self._state.steps[step_id] = {"attributes": attributes}
        self._note(
            TimelineEntry(
                at=self._now(),
                type="update",
                step=step_id,
                result=", ".join(attributes),
                values=attributes or None,
            )
        )
        await self._refresh_contact()
        return self.plan.following(index)

    async def _webhook(self, index: int, step_id: str, step: WebhookStep) -> int | None:
        url = self._value(step.webhook, step_id)
        if url is None:  # the error is on the timeline; there is nowhere to call
            self._state.steps[step_id] = {"status_code": None, "ok": False}
            self._note(TimelineEntry(at=self._now(), type="webhook", step=step_id, status="failed"))
            return self.plan.following(index)
        request = WebhookRequest(
            idempotency_key=self._ledger_key(step_id),
            url=str(url),
            method=step.method,
            body=self._value(step.body, step_id) if step.body is not None else None,
            headers=step.headers,
        )
        try:
            outcome: WebhookOutcome = await workflow.execute_activity_method(
                JourneyActivities.call_webhook, request, **SENDING
            )
        except ActivityError as error:
            outcome = WebhookOutcome(status_code=None, ok=False, error=str(error.cause or error))
        self._state.steps[step_id] = {"status_code": outcome.status_code, "ok": outcome.ok}
        self._note(
            TimelineEntry(
                at=self._now(),
                type="webhook",
                step=step_id,
                status="ok" if outcome.ok else "failed",
                reason=outcome.error,
            )
        )
        return self.plan.following(index)

    # --- events -------------------------------------------------------------------------------

    @workflow.signal(name="event")
    def on_event(self, event: EventPayload) -> None:
        if event.id in self._state.seen_event_ids:
            return
        self._state.seen_event_ids.append(event.id)
        if len(self._state.seen_event_ids) > SEEN_EVENT_IDS_KEPT * 2:
            del self._state.seen_event_ids[:-SEEN_EVENT_IDS_KEPT]
        self._inbox.append(event)
        if event.name == TRAIT_CHANGED:
            self._contact_changed = True  # a trait is part of the contact, as an attribute
        self._note(
            TimelineEntry(
                at=self._now(),
                type="event",
                event=event.name,
                properties=dict(event.properties) or None,
            )
        )
        if self._plan is not None:
            self._check_ends_run(event)

    def _check_ends_run(self, event: EventPayload) -> None:
        if self._state.outcome is not None:
            return
        journey = self.plan.journey
        goal = journey.goal
        if any(self._event_condition(event, spec) for spec in journey.exit_on):
            self._state.outcome, self._state.ended_by = "exited", event
        elif goal is not None and self._event_condition(event, goal):
            if goal.within is None or self._within_attribution(event, goal.within):
                self._state.outcome, self._state.ended_by = "converted", event
            else:
                reason = f"goal after its attribution window ({format_duration(goal.within)})"
                self._note(
                    TimelineEntry(at=self._now(), type="goal_late", event=event.name, reason=reason)
                )

    def _within_attribution(self, event: EventPayload, within: timedelta) -> bool:
        """The goal's window counts from entry to the event's own time (an order placed on
        day 13 converts even if it reaches the run a little later)."""
        entered = self._state.entered_at
        return entered is None or event.timestamp <= entered + within

    @workflow.signal(name="contact_changed")
    def on_contact_changed(self) -> None:
        """The contact's attributes changed (an identify, the contacts API): a wait on a
        condition reloads the contact and checks again."""
        self._contact_changed = True
        self._note(TimelineEntry(at=self._now(), type="contact_changed"))

    @workflow.signal(name="pause")
    def on_pause(self) -> None:
        self._state.paused = True

    @workflow.signal(name="resume")
    def on_resume(self) -> None:
        self._state.paused = False

    @workflow.query(name="status")
    def status(self) -> RunStatus:
        plan = self._plan  # None for the moment the run is loading it
        index = self._state.index if plan is not None else None
        return RunStatus(
            journey=self.input.journey,
            version=self.input.version,
            contact_id=self.input.contact_id,
            step=plan.step_ids[index] if plan is not None and index is not None else None,
            step_kind=step_kind_of(plan.step(index))
            if plan is not None and index is not None
            else None,
            waiting_for=self._state.waiting_for,
            until=self._state.waiting_until,
            outcome=self._state.outcome,
            holdout=self._state.holdout,
            entered_at=self._state.entered_at,
            paused=self._state.paused,
        )

    @workflow.query(name="timeline")
    def timeline(self) -> list[TimelineEntry]:
        return self._state.timeline

    def _alternative_for(
        self, event: EventPayload, alternatives: tuple[WaitForAlternative, ...]
    ) -> int | None:
        """The position of the first event alternative `event` satisfies, if any."""
        for position, alternative in enumerate(alternatives):
            if isinstance(alternative, WaitForEvent) and self._event_satisfies(event, alternative):
                return position
        return None

    def _event_satisfies(self, event: EventPayload, alternative: WaitForEvent) -> bool:
        if event.name != alternative.event:
            return False
        trigger = self.input.trigger
        if trigger is not None and event.id == trigger.id:
            return False  # the event that started the run is not one it waits for
        for prop in alternative.match:
            expected = trigger.properties.get(prop) if trigger else None
            if event.properties.get(prop) != expected:
                return False
        return alternative.when is None or self._condition(alternative.when, event, step=None)

    async def _received_since(self, step: WaitForStep) -> list[EventPayload]:
        """The waited-for events the contact already had in the `since` window, oldest first."""
        since = step.since
        trigger = self.input.trigger
        entered = self._state.entered_at or self._now()
        if since == "trigger":
            start = trigger.timestamp if trigger is not None else entered
        elif since == "entry":
            start = entered
        else:
            start = self._now() - parse_duration(str(since))
        found: list[EventPayload] = await workflow.execute_local_activity_method(
            JourneyActivities.events_in_window,
            EventsInWindowInput(
                contact_id=self.input.contact_id,
                names=sorted(step.waited_events()),
                since=start,
                until=self._now(),
            ),
            **QUICK,
        )
        return found

    def _event_matches(self, event: EventPayload, step: WaitForStep) -> bool:
        if event.name != step.wait_for:
            return False
        trigger = self.input.trigger
        for prop in step.match:
            expected = trigger.properties.get(prop) if trigger else None
            if event.properties.get(prop) != expected:
                return False
        return step.when is None or self._condition(step.when, event, step=None)

    def _event_condition(self, event: EventPayload, spec: EventCondition) -> bool:
        if event.name != spec.event:
            return False
        return spec.when is None or self._condition(spec.when, event, step=None)

    # --- waiting ------------------------------------------------------------------------------

    async def _sleep_until(self, until: datetime, waiting_for: str) -> None:
        self._state.waiting_for, self._state.waiting_until = waiting_for, until
        try:
            await self._wait_condition(lambda: False, until)
        finally:
            self._state.waiting_for = self._state.waiting_until = None

    async def _wait_condition(self, done: Any, until: datetime) -> None:
        """Wait for `done()` or the deadline; a goal or exit_on event ends the run (`_Stop`)."""
        await self._record_steps()
        remaining = until - self._now()
        if remaining > timedelta(0) and self.LEGACY:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._state.outcome is not None or done(), timeout=remaining
                )
        elif remaining > timedelta(0):
            # The timer is cancelled only when the run goes on: a run that a goal or exit_on
            # event ends is over in this task, and its history needs no `TimerCanceled`.
            timer = asyncio.ensure_future(workflow.sleep(remaining))
            await workflow.wait_condition(
                lambda: self._state.outcome is not None or timer.done() or done()
            )
            if self._state.outcome is None and not timer.done():
                timer.cancel()
        if self._state.outcome is not None:
            raise _Stop()

    # --- helpers ------------------------------------------------------------------------------

    @property
    def input(self) -> JourneyInput:
        return self._input

    @property
    def plan(self) -> JourneyPlan:
        assert self._plan is not None
        return self._plan

    def _now(self) -> datetime:
        return workflow.now() + self._input.clock_shift

    def _note(self, entry: TimelineEntry) -> None:
        self._state.timeline.append(entry)
        if len(self._state.timeline) > TIMELINE_KEPT * 2:
            del self._state.timeline[:-TIMELINE_KEPT]

    def _templates_read(self, name: str) -> bool:
        """Whether the journey's templates read the run's `name` (`trigger`, `steps`): a
        JourneyV2 send request carries only what they read."""
        reads = self.plan.template_reads
        return reads is None or name in reads

    def _forced_arm(self, step_id: str) -> str | None:
        return (self.input.arms or {}).get(step_id)

    def _ledger_key(self, step_id: str) -> str:
        """Run + step + visit (`workflows.ids.ledger_key`)."""
        visit = self._state.visits.get(step_id, 1)
        return ledger_key(workflow.info().workflow_id, self._state.entry_id, step_id, visit)

    def _send_key(self, step_id: str) -> str | None:
        """A send request's key; for a JourneyV2 run's first visit of a step in its first
        execution None: the send activity derives the same key from its workflow and run ids."""
        first = (
            self._state.visits.get(step_id, 1) == 1
            and self._state.entry_id == workflow.info().run_id
        )
        return None if first and not self.LEGACY else self._ledger_key(step_id)

    def _journey_data(self) -> dict[str, Any]:
        return {**self.plan.journey.data, **self.input.data}

    def _context(self, event: EventPayload | None) -> ExpressionContext:
        trigger = self.input.trigger
        return self._snapshot.context(
            self._now(),
            journey=self._journey_data(),
            trigger=trigger.as_variables() if trigger else None,
            steps=self._state.steps,
            event=event.as_variables() if event is not None else None,
        )

    def _condition(self, expression: str, event: EventPayload | None, *, step: str | None) -> bool:
        try:
            return evaluate_condition(expression, self._context(event))
        except ExpressionError as error:
            # A condition that cannot be evaluated (a missing attribute, say) is false; the
            # timeline says why, so `inspect` and `simulate` show it.
            self._note(
                TimelineEntry(
                    at=self._now(), type="error", step=step, reason=f"{expression}: {error}"
                )
            )
            return False

    def _value(self, value: Any, step_id: str) -> Any:
        try:
            return render_value(value, self._context(None))
        except ExpressionError as error:
            self._note(TimelineEntry(at=self._now(), type="error", step=step_id, reason=str(error)))
            return None

    async def _record_steps(self) -> None:
        """Record the steps reached since the last wait (the journey funnel): one local
        activity per wait rather than one per step, and none before the first send."""
        if self._lean:
            await self._record_progress(None)
            return
        state = self._state
        if not state.unrecorded_steps:
            return
        steps = self._take_unrecorded_steps()
        await workflow.execute_local_activity_method(
            JourneyActivities.record_steps,
            StepsReached(
                workflow_id=workflow.info().workflow_id, run_id=state.entry_id, steps=steps
            ),
            **QUICK,
        )

    def _take_unrecorded_steps(self) -> list[ReachedStep]:
        state = self._state
        steps = [
            step.model_copy(update={"variant": state.steps.get(step.step_id, {}).get("variant")})
            if step.kind in ("split", "send")
            else step
            for step in state.unrecorded_steps
        ]
        state.unrecorded_steps = []
        return steps

    async def _record_progress(self, ended: RunEnded | None) -> None:
        """Whatever the store does not know yet — the entry, a split's arm, the steps reached,
        the end — in one local activity (LEAN_HISTORY): one history marker per wait and one at
        the end, however much there is to record."""
        state = self._state
        pending = state.unrecorded_start or state.unrecorded_variant or state.unrecorded_steps
        if not pending and ended is None:
            return
        progress = RunProgress(
            workflow_id=workflow.info().workflow_id,
            run_id=state.entry_id,
            started=state.unrecorded_start,
            variant=state.unrecorded_variant,
            steps=self._take_unrecorded_steps(),
            ended=ended,
        )
        state.unrecorded_start = state.unrecorded_variant = None
        await workflow.execute_local_activity_method(
            JourneyActivities.record_progress, progress, **QUICK
        )

    async def _contact_after_wait(self) -> None:
        """A wait ended, and the contact may have changed meanwhile. JourneyV4 reloads it when
        a step next reads it (`_execute`), so a wake-up that goes on to a send (which reads the
        contact itself), a split or the end runs no local activity for it; a journey whose goal
        or exit_on has a `when` reloads it at once, since those are checked against it
        whenever an event arrives. The types before JourneyV4 reload it at once."""
        if self.LAZY_CONTACT and not self.plan.ends_on_condition:
            self._contact_stale = True
        else:
            await self._refresh_contact()

    async def _refresh_contact(self) -> None:
        self._contact_stale = False
        self._snapshot = await workflow.execute_local_activity_method(
            JourneyActivities.load_contact,
            # The plan's event questions, answered by the store at the run's clock: the
            # snapshot carries a few numbers, never the contact's events.
            LoadContactInput(
                contact_id=self.input.contact_id,
                questions=list(self.plan.event_questions) if self.LEGACY else [],
                plan=None
                if self.LEGACY
                else PlanRef(journey=self.input.journey, version=self.input.version),
                now=self._now(),
            ),
            **QUICK,
        )


@workflow.defn(name=V3_WORKFLOW_TYPE)
class JourneyV3Workflow(JourneyWorkflow):
    """The workflow type runs had before `JourneyV4`: the contact reloaded as soon as a wait
    ends. Registered so that its runs finish (and their recorded histories replay) as they
    started. Remove it once no run of this type is open (`rapport list`)."""

    LAZY_CONTACT = False

    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        return await super().run(input)


@workflow.defn(name=V2_WORKFLOW_TYPE)
class JourneyV2Workflow(JourneyWorkflow):
    """The workflow type runs had before `JourneyV3`: every send a regular activity from its
    first attempt. Registered so that its runs finish (and their recorded histories replay)
    as they started. Remove it once no run of this type is open (`rapport list`)."""

    LOCAL_SENDS = False
    LAZY_CONTACT = False

    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        return await super().run(input)


@workflow.defn(name=LEGACY_WORKFLOW_TYPE)
class LegacyJourneyWorkflow(JourneyWorkflow):
    """The workflow type runs had before `JourneyV2`: registered so that they finish (and their
    recorded histories replay) exactly as they started, `lean-history` patch included. Remove
    it once no run of this type is open (`rapport list`; docs/workflows.md)."""

    LEGACY = True
    LOCAL_SENDS = False
    LAZY_CONTACT = False

    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        return await super().run(input)
