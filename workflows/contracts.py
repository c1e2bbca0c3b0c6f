"""The models that cross Temporal boundaries: workflow input/output, signals, queries, activities.

One model per boundary (samples-python's "a single dataclass"), each carrying a schema version so
a payload written by an older release stays readable. They travel through the pydantic data
converter.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from workflows.event_questions import EventAnswers, EventQuestion
from workflows.expressions import ExpressionContext

CONTRACT_VERSION = 1
# A payload without `contract_version` is of this version: the field is written only when it
# differs (every nested model carried it, ~20 bytes each time, into the history). A release that
# raises CONTRACT_VERSION must read an absent field as 1.
FIRST_CONTRACT_VERSION = 1

Outcome = Literal["converted", "completed", "exited", "not_entered", "failed", "cancelled"]
# `deferred` is not a ledger status: quiet hours hold the send; the workflow calls again later.
SendStatus = Literal["sent", "suppressed", "skipped", "failed", "deferred"]


class Compact(BaseModel):
    """Serialised without the fields whose value is their empty default (None, False, 0, "",
    [] or {}: absent reads back as the default) nor a `contract_version` of 1: every payload is
    written into the workflow history, which Temporal stores and bills. So a field's default
    must never change meaning while payloads written with it may be read."""

    @model_serializer(mode="wrap")
    def _without_default_nones(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if not isinstance(data, dict):
            return data
        defaults = _optional_defaults(type(self))

        def left_out(key: str, value: Any) -> bool:
            if key == "contract_version":
                return bool(value == FIRST_CONTRACT_VERSION)
            if value or key not in defaults:  # set, or a required field (or not a field)
                return False
            # A value equal to its field's empty default (None, False, 0, "", [] or {}).
            return bool(value == defaults[key])

        return {key: value for key, value in data.items() if not left_out(key, value)}


@cache
def _optional_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The defaults of the model's optional fields as they serialise, computed once per model
    (each payload of a run is serialised this way; `get_default` per field per payload cost
    more than the rest of it)."""
    defaults: dict[str, Any] = {}
    for key, field in model.model_fields.items():
        if field.is_required():
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        defaults[key] = default
    return defaults


class Contract(Compact):
    model_config = ConfigDict(frozen=True, extra="ignore")
    contract_version: int = CONTRACT_VERSION


class EventPayload(Contract):
    """A behavioural event as journeys see it (`event.*`, `trigger.*`)."""

    id: str = Field(description="Unique per event (the source's messageId): signals dedupe on it.")
    name: str
    properties: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime

    def as_variables(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "properties": dict(self.properties),
            "timestamp": self.timestamp.isoformat(),
        }


class ReachedStep(Contract):
    """A step the run reached, not yet recorded in the store (the journey funnel)."""

    step_id: str
    kind: str
    at: datetime
    seq: int = Field(description="The run's step visits counted in order, this one included.")
    variant: str | None = Field(None, description="The arm a split chose.")


class StepsReached(Contract):
    """Steps a run reached since the last recording, for `run_steps`."""

    workflow_id: str
    run_id: str
    steps: list[ReachedStep]


class RunState(Compact):
    """Everything a run knows about itself, in one place.

    The workflow keeps one `RunState` (`self._state`) and `continue_as_new` carries it whole
    (samples-python's `safe_message_handlers`), so a field added here crosses into the next run
    by construction: none can be forgotten again, as `paused` once was. Mutable, unlike the
    other contracts: the workflow updates it in place as the run moves.
    """

    model_config = ConfigDict(extra="ignore", validate_assignment=False)
    contract_version: int = CONTRACT_VERSION

    index: int | None = Field(0, description="The step being executed; None once the run ends.")
    entry_id: str = Field("", description="The first execution's run id: one entry, many runs.")
    entered_at: datetime | None = None
    holdout: bool = False
    variant: str | None = Field(None, description="The arm the last split chose.")
    paused: bool = False
    outcome: str | None = None
    steps: dict[str, Any] = Field(default_factory=dict, description="`steps.*` for expressions.")
    visits: dict[str, int] = Field(default_factory=dict, description="Passes through each step.")
    seen_event_ids: list[str] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    waiting_for: str | None = Field(None, description="An event name, 'time', 'resume' or None.")
    waiting_until: datetime | None = None
    ended_by: EventPayload | None = Field(None, description="The goal or exit_on event, if any.")
    unrecorded_steps: list[ReachedStep] = Field(
        default_factory=list, description="Reached, to be recorded before the next wait."
    )
    unrecorded_start: RunStarted | None = Field(
        None, description="The entry, recorded with the first steps (one local activity)."
    )
    unrecorded_variant: str | None = Field(
        None, description="An arm a split chose, recorded with the next steps."
    )


class PlanRef(Contract):
    """A compiled plan by reference: the store holds it under (journey, version)."""

    journey: str
    version: str


class TemplateRef(PlanRef):
    """One template of a stored plan: what a send request names instead of the sources."""

    channel: Literal["email", "sms"]
    name: str


class JourneyInput(Contract):
    journey: str
    version: str = Field(description="The plan version the run keeps, start to end.")
    contact_id: str
    trigger: EventPayload | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="Overrides journey.data.")
    key: str | None = Field(None, description="The trigger key value, for keyed runs.")
    clock_shift: timedelta = Field(
        timedelta(0),
        description="Added to the workflow clock; the simulator uses it to start at --start.",
    )
    holdout: bool | None = Field(
        None,
        description="Force the control-group decision; None draws it (the simulator passes False).",
    )
    arms: dict[str, str] | None = Field(
        None,
        description="Step id -> the split arm or content variant to take instead of drawing "
        "one (the simulator's --variant).",
    )
    state: RunState | None = Field(
        None, description="Set by continue_as_new: the run so far (None: a new entry)."
    )


class TimelineEntry(Contract):
    at: datetime
    type: Literal[
        "send",
        "wait",
        "wait_until",
        "wait_for",
        "branch",
        "split",
        "update",
        "webhook",
        "exit",
        "event",
        "contact_changed",
        "delay",
        "error",
        "enter",
        "goal_late",
    ]
    step: str | None = None
    channel: str | None = None
    to: str | None = None
    subject: str | None = None
    body: str | None = None
    status: str | None = None
    reason: str | None = None
    result: str | None = None
    event: str | None = None
    outcome: str | None = None
    until: datetime | None = None
    properties: dict[str, Any] | None = Field(
        None,
        description="An event's properties: of an `event`, or of the event an `exit` ended on.",
    )
    values: dict[str, Any] | None = Field(None, description="What an `update` wrote.")
    variant: str | None = Field(None, description="The content variant a send used.")

    def public(self) -> dict[str, Any]:
        """The entry as `simulate --json` prints it: only the fields that apply."""
        data = self.model_dump(mode="json", exclude_none=True, exclude={"contract_version"})
        return data


class JourneyResult(Contract):
    """How a run ended. A JourneyV2 run's result is its outcome (and holdout) alone: its
    journey, version and contact are its input's, its entry and end are in the store's `runs`
    row and Temporal's own start and close times, its timeline is the `timeline` query."""

    journey: str | None = None
    version: str | None = None
    contact_id: str | None = None
    outcome: Outcome | str
    entered_at: datetime | None = None
    ended_at: datetime | None = None
    holdout: bool = False
    timeline: list[TimelineEntry] | None = Field(
        None,
        description="Runs of `JourneyWorkflow` (before JourneyV2) only: a JourneyV2 run's "
        "timeline is its `timeline` query, also once it has ended (`runtime.run_state`).",
    )


class EndedRun(JourneyResult):
    """A result with its timeline, however the run's type keeps it (`runtime.starter.ended_run`)."""

    timeline: list[TimelineEntry]


class RunStatus(Contract):
    """The answer to the `status` query: where the contact stands now."""

    journey: str
    version: str
    contact_id: str
    step: str | None = None
    step_kind: str | None = None
    waiting_for: str | None = Field(None, description="An event name, 'time', or None.")
    until: datetime | None = None
    outcome: str | None = None
    holdout: bool = False
    entered_at: datetime | None = None
    paused: bool = False


# --- activities ----------------------------------------------------------------------------


class LoadContactInput(Contract):
    contact_id: str
    questions: list[EventQuestion] = Field(
        default_factory=list, description="The plan's event questions, answered at `now`."
    )
    plan: PlanRef | None = Field(
        None,
        description="A JourneyV2 run's plan: the questions are its, and the snapshot carries "
        "only the attributes its expressions read (`run_reads`).",
    )
    now: datetime | None = Field(None, description="The run's clock; None: the current time.")


class ContactSnapshot(Contract):
    """A contact as expressions see it: the profile and the answers to the event questions.
    Small whatever the contact's history (it is written into the workflow history)."""

    found: bool
    contact: dict[str, Any] = Field(
        default_factory=dict, description="Flattened: profile fields and every attribute."
    )
    events: EventAnswers = Field(default_factory=EventAnswers)

    def context(
        self,
        now: datetime,
        *,
        journey: dict[str, Any] | None = None,
        trigger: dict[str, Any] | None = None,
        steps: dict[str, Any] | None = None,
        event: dict[str, Any] | None = None,
    ) -> ExpressionContext:
        """The expression context for this contact: the one way every caller builds it."""
        context = ExpressionContext(
            now=now,
            contact=self.contact,
            journey=journey or {},
            trigger=trigger,
            steps=steps or {},
            events=self.events,
        )
        return context.with_event(event) if event is not None else context


class MessageContext(Contract):
    """What a message template sees besides the contact, which the activity loads fresh."""

    journey_data: dict[str, Any] | None = Field(
        None, description="None in a request by reference: the plan's data and the overrides."
    )
    trigger: dict[str, Any] | None = None
    steps: dict[str, Any] | None = None
    now: datetime


class SendRequest(Contract):
    """A send, by reference: the run's plan version and the step. The activity reads the
    channel, category, template and settings from the plan (`JourneyPlan.send_fields`), so the
    request written into the history carries only what the run itself decided. Requests of
    older releases carry those fields themselves, and are read as they are."""

    idempotency_key: str | None = Field(
        None,
        description="None (JourneyV2, a step's first send in the run's first execution): "
        "`ledger_key` of the calling workflow's id and run id, the step and visit 1.",
    )
    workflow_id: str | None = Field(None, description="None: the calling workflow's (JourneyV2).")
    journey: str
    version: str | None = Field(None, description="The run's plan version (None: fields set).")
    step_id: str
    contact_id: str
    channel: Literal["email", "sms"] | None = None
    category: Literal["marketing", "transactional"] | None = None
    template: TemplateRef | None = None
    to: str | None = Field(None, description="Recipient override, already rendered.")
    context: MessageContext
    data: dict[str, Any] | None = Field(
        None, description="The run's data overrides; the journey's data comes from the plan."
    )
    holdout: bool = False
    frequency_cap: str | None = None
    quiet_hours: str | None = Field(
        None, description="HH:MM-HH:MM in the contact's zone; a marketing send waits it out."
    )
    fallback_timezone: str | None = None
    variant: str | None = Field(
        None,
        description="A content experiment's variant for this contact (the template names it); "
        "the activity sends the winner instead once one is decided.",
    )
    variant_forced: bool | None = Field(
        None, description="The variant was forced (simulate --variant): no winner replaces it."
    )
    answered: dict[str, Any] | None = Field(
        None,
        description="JourneyV3: what the provider answered to the run's local attempt of this "
        "send when the attempt could not record it (the store was unavailable), for the regular "
        "activity that takes over (`journey_activities.ProviderAnswer`).",
    )


class SendOutcome(Contract):
    status: SendStatus
    variant: str | None = Field(None, description="The variant sent (the ledger's).")
    to: str | None = None
    subject: str | None = None
    body: str | None = None
    reason: str | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    retry_at: datetime | None = Field(None, description="With `deferred`: when to send.")


class WaitUntilInput(Contract):
    contact_id: str
    when: str = Field(description="'09:00' or an ISO timestamp (expressions already rendered).")
    days: int | None = Field(
        None, description="With a time of day: that time this many calendar days from today."
    )
    offset: timedelta | None = None
    fallback_timezone: str | None = None
    now: datetime


class EventsInWindowInput(Contract):
    """`wait_for … since`: the contact's events of these names already received in a window."""

    contact_id: str
    names: list[str]
    since: datetime
    until: datetime = Field(description="The run's clock: later events do not count yet.")
    limit: int = 100


class UpdateContactInput(Contract):
    contact_id: str
    attributes: dict[str, Any]


class WebhookRequest(Contract):
    idempotency_key: str
    url: str
    method: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = Field(default_factory=dict)


class WebhookOutcome(Contract):
    status_code: int | None = None
    ok: bool
    error: str | None = None


class RunStarted(Contract):
    workflow_id: str
    run_id: str
    contact_id: str
    journey: str
    version: str
    entered_at: datetime
    holdout: bool
    variant: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class RunVariant(Contract):
    """A split chose `variant` for the run (`runs.variant`: the arm the run took)."""

    workflow_id: str
    run_id: str
    variant: str


class RunEnded(Contract):
    workflow_id: str
    run_id: str
    outcome: str
    ended_at: datetime


class OpenRun(Contract):
    """What a run reads when it starts (or continues as new): its plan and its contact."""

    journey: str
    version: str
    contact_id: str
    now: datetime = Field(description="The run's clock, for the plan's event questions.")
    slim: bool = Field(
        False,
        description="A JourneyV2 run: the plan as `JourneyPlan.run_document`, the contact as "
        "far as the run's expressions read it (`run_reads`), the audience judged here.",
    )
    entering: bool = Field(False, description="A new entry (slim): judge the audience.")
    trigger: EventPayload | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="The run's data overrides.")
    holdout: bool | None = Field(None, description="`JourneyInput.holdout`: forced, or drawn.")
    start: int = Field(0, description="The step the run opens at (slim: read what it needs).")


class RunOpened(Contract):
    plan: dict[str, Any] = Field(
        description="`JourneyPlan.for_run()`: the steps, no templates (`run_document` if slim)."
    )
    contact: ContactSnapshot
    refused: bool = Field(False, description="Slim: the audience is false for the contact.")
    holdout: bool = Field(False, description="Slim, entering: in the journey's control group.")
    refusal: str | None = Field(
        None, description="Why, when the audience could not be evaluated (for the timeline)."
    )


class RunProgress(Contract):
    """What a run records in the store at a wait or at its end, in one local activity: its
    entry (with the first record), the steps reached since the last record, the arm a split
    chose, and how it ended. One history marker instead of one per kind of record."""

    workflow_id: str
    run_id: str
    started: RunStarted | None = None
    steps: list[ReachedStep] = Field(default_factory=list)
    variant: str | None = None
    ended: RunEnded | None = None


RunState.model_rebuild()
