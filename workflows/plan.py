"""`JourneyPlan`: a compiled, validated, versioned journey — what a journey workflow gets."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from rendering.bundle import TemplateBundle, template_variables
from workflows.durations import parse_clock, parse_duration
from workflows.event_questions import EventQuestion
from workflows.expression_sites import journey_event_questions, run_reads
from workflows.ids import stable_fraction
from workflows.model import (
    BranchStep,
    ExitStep,
    Journey,
    SendStep,
    SplitStep,
    Step,
    UpdateStep,
    WaitForStep,
    WaitStep,
    WaitUntilStep,
    WebhookStep,
    step_kind_of,
)

PLAN_SCHEMA_VERSION = 1
TRAIT_CHANGED = "trait_changed"  # the event a trait's change leaves (store.traits)
Channel = Literal["email", "sms"]
# An SMS waits out these hours in the contact's zone when the journey sets none.
SMS_DEFAULT_QUIET_HOURS = "21:00-08:00"
# A `data` value `{after_start: DURATION, at: "HH:MM"}`: a moment that long after the run starts
# (for a segment journey: after the broadcast), at that time of day in the journey's zone.
AFTER_START = "after_start"
# A send step's fields the send activity reads from the stored plan (`send_fields`), so a run's
# own copy of its plan leaves them out (`run_document`).
SEND_ACTIVITY_READS = frozenset({"template", "category", "winner", "lint"})
# What a send request may carry of the run's own values for its templates (`template_reads`).
RUN_VALUES = frozenset({"trigger", "steps"})


def relative_moment(value: Any) -> tuple[timedelta, time | None] | None:
    """(duration, time of day) of a `data` value relative to the run's start, else None.
    Raises DurationError (or ValueError) when it is one but malformed."""
    if not isinstance(value, dict) or AFTER_START not in value:
        return None
    unknown = sorted(set(value) - {AFTER_START, "at"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} beside after_start (only 'at')")
    after = parse_duration(str(value[AFTER_START]))
    clock = value.get("at")
    return after, parse_clock(str(clock)) if clock is not None else None


def template_key(channel: str, name: str) -> str:
    return f"{channel}:{name}"


class JourneyPlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = PLAN_SCHEMA_VERSION
    journey_id: str
    version: str
    source_file: str
    journey: Journey
    step_ids: tuple[str, ...]
    templates: dict[str, TemplateBundle]
    # Derived from the journey (not part of the version): what its expressions ask about the
    # contact's events, answered by the store each time a run refreshes the contact.
    event_questions: tuple[EventQuestion, ...] = ()
    # A JourneyV2 run's plan only (`from_run_document`): which of the run's own values
    # (`trigger`, `steps`) the journey's templates read, so a send request carries only those.
    # None (every stored or legacy plan): all of them. Never dumped: stored plans stay readable
    # by workers of the previous release (`extra="forbid"`).
    template_reads: tuple[str, ...] | None = Field(None, exclude=True)

    @classmethod
    def build(
        cls,
        journey_id: str,
        source_file: str,
        journey: Journey,
        templates: dict[str, TemplateBundle],
    ) -> JourneyPlan:
        step_ids = assign_step_ids(journey.steps)
        return cls(
            journey_id=journey_id,
            version=content_version(journey, templates),
            source_file=source_file,
            journey=journey,
            step_ids=step_ids,
            templates=templates,
            event_questions=journey_event_questions(journey),
        )

    def index_of(self, step_id: str) -> int:
        return self.step_ids.index(step_id)

    @property
    def ends_on_condition(self) -> bool:
        """Whether the goal or an exit_on has a `when`: checked against the contact whenever
        an event arrives, so a run keeps the contact current (`JourneyWorkflow`)."""
        goal = self.journey.goal
        conditions = [goal] if goal is not None else []
        return any(spec.when is not None for spec in [*conditions, *self.journey.exit_on])

    def step(self, index: int) -> Step:
        return self.journey.steps[index]

    def following(self, index: int) -> int | None:
        """Where control goes after step `index` finishes normally (None: the run completes)."""
        explicit = self.journey.steps[index].next
        if explicit is not None:
            return self.index_of(explicit)
        return index + 1 if index + 1 < len(self.journey.steps) else None

    def jump(self, step_id: str | None, index: int) -> int | None:
        """`step_id` when given, else the step after `index`."""
        return self.index_of(step_id) if step_id is not None else self.following(index)

    def successors(self, index: int) -> Iterator[int | None]:
        step = self.journey.steps[index]
        match step:
            case ExitStep():
                return
            case BranchStep():
                for case in step.branch:
                    yield self.index_of(case.goto)
                yield self.jump(step.else_, index)
            case SplitStep():
                for target in step.split:
                    yield self.index_of(target)
            case WaitForStep():
                for alternative in step.alternatives():
                    yield self.jump(alternative.next, index)
                yield self.jump(step.on_timeout, index)
            case SendStep() | WaitStep() | WaitUntilStep() | UpdateStep() | WebhookStep():
                yield self.following(index)

    def watches_contact(self) -> bool:
        """Whether a run may wait on a condition over the contact, and so needs to hear when
        the contact's attributes or traits change (`contact_changed`, `trait_changed`)."""
        return any(
            isinstance(step, WaitForStep) and step.has_condition() for step in self.journey.steps
        )

    def template_for(self, step: SendStep, variant: str | None = None) -> TemplateBundle:
        """The step's template, or its `variant`'s (default: the first variant's)."""
        arms = step.arms()
        arm = arms[variant] if variant is not None else next(iter(arms.values()))
        return self.templates[template_key(step.send, arm.template)]

    def compact(self) -> dict[str, Any]:
        """The plan as a JSON document without empty fields; `model_validate` reads it back."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)

    def steps_only(self) -> JourneyPlan:
        """This plan without its template sources: what a run's workflow needs (the send
        activity fetches a template by reference), a fraction of the size."""
        return self.model_copy(update={"templates": {}})

    def for_run(self) -> dict[str, Any]:
        """What a run's history records of its plan: the steps and the journey's rules, as a
        compact document without the template sources, the description or the file name
        (nothing a run decides by); `model_validate` reads it back."""
        journey = self.journey.model_copy(update={"description": None})
        return self.model_copy(
            update={"templates": {}, "source_file": "", "journey": journey}
        ).compact()

    def run_document(self) -> dict[str, Any]:
        """What a `JourneyV2` run records of its plan (in the `open_run` marker): only what the
        workflow decides by — the steps' flow and expressions, the audience, goal, exit_on,
        zone, `data` (when an expression of the run reads `journey.*`) and whether its
        templates read `trigger` or `steps` — with every default left out. Not the
        audience and holdout (`open_run` judges and draws them), nor the name, trigger or
        re-entry rule (the router's), a send's template, category or winner rule (the send
        activity reads those from the stored plan), lint settings, step ids (recomputed from
        the steps) or event questions (the store reads them from the stored plan).
        `from_run_document` reads it back."""
        journey = self.journey.model_dump(
            mode="json",
            by_alias=True,
            exclude_defaults=True,
            exclude={
                "name",
                "description",
                "status",
                "trigger",
                "reentry",
                "lint",
                "settings",
                "audience",  # `open_run` judges it
                "holdout",  # and draws the contact into the control group
            },
        )
        for key in ("goal", "exit_on"):  # `{event: NAME}` alone is written `NAME`
            if key in journey:
                journey[key] = _bare_event(journey[key])
        journey["steps"] = [_step_for_run(step) for step in self.journey.steps]
        if not run_reads(self.journey, audience=False).journey_data:
            journey.pop("data", None)  # for templates only: the send activity reads the plan's
        reads = self.template_reads_of()
        if reads:
            journey["template_reads"] = list(reads)
        if self.journey.settings.timezone is not None:
            journey["timezone"] = self.journey.settings.timezone
        return journey

    @classmethod
    def from_run_document(
        cls, journey_id: str, version: str, document: dict[str, Any]
    ) -> JourneyPlan:
        """The plan as a `JourneyV2` run sees it (`run_document`): what the run does not read
        is left at neutral values (a manual trigger, the journey id as its name, no templates)."""
        fields = dict(document)
        timezone = fields.pop("timezone", None)
        reads = fields.pop("template_reads", [])
        journey = Journey.model_validate(
            {
                **fields,
                "name": journey_id,
                "trigger": {"manual": True},
                "settings": {"timezone": timezone} if timezone else {},
            }
        )
        return cls(
            journey_id=journey_id,
            version=version,
            source_file="",
            journey=journey,
            step_ids=assign_step_ids(journey.steps),
            templates={},
            template_reads=tuple(reads),
        )

    def before_wait(self, start: int) -> frozenset[int]:
        """The steps a run at step `start` may reach before its next wait (that wait and
        the waits it may reach first included): what it decides by until it refreshes the
        contact, which it does after every wait."""
        waits = (WaitStep, WaitUntilStep, WaitForStep)
        seen: set[int] = set()
        todo = [start]
        while todo:
            index = todo.pop()
            if index in seen:
                continue
            seen.add(index)
            if not isinstance(self.step(index), waits):
                todo.extend(i for i in self.successors(index) if i is not None)
        return frozenset(seen)

    def template_reads_of(self) -> tuple[str, ...]:
        """Which of `trigger` and `steps` any of the journey's templates reads (a template
        that does not parse counts as reading both)."""
        names: set[str] = set()
        for bundle in self.templates.values():
            read = template_variables(bundle)
            names |= RUN_VALUES if read is None else read & RUN_VALUES
        return tuple(sorted(names))

    def start_data(self, started_at: datetime) -> dict[str, Any]:
        """The `data` values written relative to the run's start (`{after_start: 10d, at:
        "19:00"}`), as ISO timestamps for a run that starts at `started_at`: a run carries
        them in its own data, which overrides the journey's (the segment tick passes its own
        time, so every run of a broadcast gets the same values)."""
        zone = ZoneInfo(self.journey.settings.timezone or "UTC")
        values: dict[str, Any] = {}
        for key, value in self.journey.data.items():
            relative = relative_moment(value)
            if relative is None:
                continue
            after, clock = relative
            moment = (started_at + after).astimezone(zone)
            if clock is not None:
                moment = moment.replace(
                    hour=clock.hour, minute=clock.minute, second=0, microsecond=0
                )
            values[key] = moment.isoformat()
        return values

    def data_at(self, started_at: datetime) -> dict[str, Any]:
        """The journey's `data` as a run starting at `started_at` sees it."""
        return {**self.journey.data, **self.start_data(started_at)}

    def send_fields(self, step_id: str) -> dict[str, Any]:
        """What a send of step `step_id` takes from the plan: the channel, category, template
        and the journey's sending settings (a send request names the step, not these)."""
        step = self.step(self.index_of(step_id))
        if not isinstance(step, SendStep):
            raise ValueError(f"step {step_id!r} of {self.journey_id!r} is not a send")
        settings = self.journey.settings
        quiet_hours = settings.quiet_hours
        if quiet_hours is None and step.send == "sms":
            quiet_hours = SMS_DEFAULT_QUIET_HOURS
        return {
            "channel": step.send,
            "category": step.category,
            "template": step.template,
            "frequency_cap": settings.frequency_cap,
            "quiet_hours": quiet_hours,
            "fallback_timezone": settings.timezone,
        }


def in_holdout(plan: JourneyPlan, contact_id: str, forced: bool | None = None) -> bool:
    """Whether a new entry of `contact_id` falls in the journey's control group: `forced` if
    given (the simulator's), else a stable draw per journey and contact."""
    if forced is not None:
        return forced
    holdout = plan.journey.holdout
    return holdout > 0 and stable_fraction("holdout", plan.journey_id, contact_id) * 100 < holdout


def _bare_event(value: Any) -> Any:
    if isinstance(value, list):
        return [_bare_event(item) for item in value]
    return value["event"] if isinstance(value, dict) and set(value) == {"event"} else value


def _step_for_run(step: Step) -> dict[str, Any]:
    """A step without its defaults (its action key kept, e.g. `exit: completed`) and without
    what only the send activity reads."""
    kind = step_kind_of(step)
    full = step.model_dump(mode="json", by_alias=True)
    document = step.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    if kind is not None:
        document[kind] = full[kind]
    return {key: value for key, value in document.items() if key not in SEND_ACTIVITY_READS}


def assign_step_ids(steps: list[Step]) -> tuple[str, ...]:
    """Every step gets an id: its own, or `{kind}_{position}` (1-based) kept clear of real ids."""
    taken = {step.id for step in steps if step.id}
    ids: list[str] = []
    for position, step in enumerate(steps, start=1):
        if step.id:
            ids.append(step.id)
            continue
        candidate = f"{step_kind_of(step)}_{position}"
        while candidate in taken:
            candidate += "_"
        taken.add(candidate)
        ids.append(candidate)
    return tuple(ids)


def content_version(journey: Journey, templates: dict[str, TemplateBundle]) -> str:
    """A content hash of the journey (as parsed, so comments don't count) and its templates."""
    payload = {
        "journey": journey.model_dump(mode="json", by_alias=True),
        "templates": {key: bundle.files for key, bundle in sorted(templates.items())},
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return digest[:12]


def listened_events(plan: JourneyPlan) -> set[str]:
    """Event names a running run of this journey reacts to."""
    journey = plan.journey
    names = {
        name
        for step in journey.steps
        if isinstance(step, WaitForStep)
        for name in step.waited_events()
    }
    if plan.watches_contact():
        names.add(TRAIT_CHANGED)  # a trait that changes may make a condition true
    names.update(spec.event for spec in journey.exit_on)
    if journey.goal is not None:
        names.add(journey.goal.event)
    return names
