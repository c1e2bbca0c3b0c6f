"""`rapport validate` against the samples: every message rendered for them (issue 16 item 1),
and journeys whose triggers enter the same contacts (issue 16 item 3).

Each template a compiled journey sends is rendered, in the contact's locale, for every contact
file in `contacts/`, with the variables the send activity builds (`message_variables`, the same
path as `rapport preview`) and a sample trigger: the first event of the journey's trigger in
`simulations/*.yaml`. What a sample cannot know — what earlier steps produced, a trigger no
simulation holds — stands in as a placeholder. A contact that would not enter the journey (its
segment, audience or trigger `when` is false for it) is skipped. A render that fails is what
would fail at send time: an error at the template's FILE:LINE, naming the contact file (once per
problem).

Two journeys overlap when their triggers are alike (the same event, or both segment schedules)
and the samples do not show them apart: some contact enters both, or the samples cannot decide
for one of them. A warning at the second one's trigger names both files.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined
from pydantic import ValidationError

from activities.contact_context import scratch_snapshot
from rendering.bundle import TemplateBundle, template_event_questions
from rendering.context import message_variables
from rendering.render import RenderError, render_email, render_sms
from runtime.traits import load_traits
from settings import Settings
from store.records import ContactRecord
from workflows.contact_file import ContactFile, ContactFileError, load_contact_file
from workflows.contracts import ContactSnapshot
from workflows.diagnostics import Diagnostic, display_path, lint
from workflows.entry import entry_refusal, start_refusal
from workflows.event_questions import EventQuestion
from workflows.model import EventTrigger, SegmentScheduleTrigger, SendStep
from workflows.plan import JourneyPlan
from workflows.source import YamlProblem, read_yaml_file


class _Unknown(ChainableUndefined):
    """What a sample cannot know (`steps.*`, a trigger with no sample): any attribute of it is
    another placeholder, and it renders as a word."""

    def __str__(self) -> str:
        return "Xxxxxxxxxx"


@dataclass(frozen=True)
class SampleTrigger:
    event: dict[str, Any]
    source: str  # the simulation file it came from


def contact_files(contacts_dir: Path) -> list[Path]:
    return sorted(contacts_dir.glob("*.yaml")) if contacts_dir.is_dir() else []


def sample_triggers(simulations_dir: Path, clock: datetime) -> dict[str, SampleTrigger]:
    """Event name -> the first such event of the simulations (files in name order)."""
    found: dict[str, SampleTrigger] = {}
    if not simulations_dir.is_dir():
        return found
    for path in sorted(simulations_dir.glob("*.yaml")):
        try:
            items = read_yaml_file(path)
        except (OSError, UnicodeDecodeError, YamlProblem):
            continue  # `simulate` reports a bad events file
        for item in items if isinstance(items, list) else []:
            name = item.get("event") if isinstance(item, dict) else None
            properties = item.get("properties") or {}
            if isinstance(name, str) and name not in found and isinstance(properties, dict):
                event = {
                    "id": f"sample:{name}",
                    "name": name,
                    "properties": properties,
                    "timestamp": clock.isoformat(),
                }
                found[name] = SampleTrigger(event, display_path(path))
    return found


def _sends(plan: JourneyPlan) -> list[tuple[SendStep, str]]:
    """One send step per template of the plan, with the variant that sends it (a plain send's
    one arm is named by its template)."""
    seen: dict[str, tuple[SendStep, str]] = {}
    for step in plan.journey.steps:
        if isinstance(step, SendStep):
            for arm, content in step.arms().items():
                seen.setdefault(f"{step.send}:{content.template}", (step, arm))
    return list(seen.values())


@dataclass
class SampleChecks:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)  # journeys with a template that fails
    # journey -> the sample contacts that enter it / for whom its conditions cannot be evaluated
    entrants: dict[str, set[str]] = field(default_factory=dict)
    undecided: dict[str, set[str]] = field(default_factory=dict)


def check_samples(
    settings: Settings, plans: dict[str, JourneyPlan], *, render: bool = True
) -> SampleChecks:
    """Who of the sample contacts enters each journey, and (with `render`) every problem met
    rendering each plan's templates for them."""
    clock = datetime.now(UTC)
    triggers = sample_triggers(settings.contacts_dir.parent / "simulations", clock)
    program = load_traits(settings)
    traits = replace(program, clock=lambda: clock) if program is not None else None
    questions: set[EventQuestion] = set()
    for plan in plans.values():
        questions.update(plan.event_questions)
        for bundle in plan.templates.values():
            questions.update(template_event_questions(bundle))
    found: dict[tuple[str, int, str], Diagnostic] = {}
    result = SampleChecks()
    for path in contact_files(settings.contacts_dir):
        try:
            person = load_contact_file(path)
            record = ContactRecord(**person.profile())
        except (ContactFileError, ValidationError):
            continue  # `preview` and `simulate` report a bad contact file
        snapshot = scratch_snapshot(
            record, person.event_records(clock), questions, clock, traits=traits
        )
        for plan in plans.values():
            trigger = plan.journey.trigger
            sample = triggers.get(trigger.event) if isinstance(trigger, EventTrigger) else None
            enters = _enters(plan, snapshot, sample, clock)
            if enters is None:
                result.undecided.setdefault(plan.journey_id, set()).add(person.id)
            if not enters:
                continue  # a message it can never get cannot fail for it
            result.entrants.setdefault(plan.journey_id, set()).add(person.id)
            for send, arm in _sends(plan) if render else ():
                variables = message_variables(
                    snapshot,
                    journey_data=plan.data_at(clock),
                    trigger=sample.event if sample else None,
                    steps={},
                    now=clock,
                    settings=settings,
                    message_key=f"validate:{plan.journey_id}:{person.id}",
                )
                variables["steps"] = _Unknown(name="steps")
                if isinstance(trigger, EventTrigger) and sample is None:
                    variables["trigger"] = _Unknown(name="trigger")
                bundle = plan.template_for(send, arm).for_locale(person.locale)
                try:
                    _render(bundle, send, variables, person)
                except RenderError as error:
                    where = f"rendering for {display_path(path)}"
                    if sample is not None:
                        where += f" with the {sample.event['name']} event of {sample.source}"
                    _keep(found, error, where)
                    result.failed.add(plan.journey_id)
    result.diagnostics = list(found.values())
    return result


def _enters(
    plan: JourneyPlan, snapshot: ContactSnapshot, sample: SampleTrigger | None, clock: datetime
) -> bool | None:
    """Whether the contact would enter: the trigger's `when` on the sample event, the segment
    and the audience, decided as the router and the segment tick decide (None: a condition
    cannot be evaluated for it)."""
    journey = plan.journey
    if isinstance(journey.trigger, EventTrigger) and sample is not None:
        context = snapshot.context(clock, journey=journey.data, event=sample.event)
        why = start_refusal(journey, context)
        if why is not None and why.startswith("condition could not be evaluated"):
            return None
        return why is None
    refusal = entry_refusal(journey, snapshot.context(clock, journey=journey.data))
    if refusal is not None and refusal.error is not None:
        return None
    return refusal is None


# ---------------------------------------------------------------------------------------------
# Journeys that target the same contacts


def _audience_of(plan: JourneyPlan) -> str | None:
    """What kind of contacts the trigger targets, for comparing journeys (None: not compared,
    e.g. a one-time broadcast or a manual journey)."""
    trigger = plan.journey.trigger
    if isinstance(trigger, EventTrigger):
        return f"the {trigger.event} event"
    if isinstance(trigger, SegmentScheduleTrigger):
        return "a segment schedule"
    return None


def _ignores_overlaps(plan: JourneyPlan) -> bool:
    settings = plan.journey.lint
    return settings is not None and "overlapping-journeys" in settings.ignore


def _trigger_position(source_file: str) -> tuple[int, int]:
    try:
        lines = Path(source_file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 1, 1
    for number, line in enumerate(lines, start=1):
        if line.startswith("trigger:"):
            return number, 1
    return 1, 1


def overlapping_journeys(
    plans: dict[str, JourneyPlan], samples: SampleChecks | None
) -> list[Diagnostic]:
    """A warning for each pair of journeys with alike triggers that the samples do not show
    apart (without samples: the same event and neither has a `when` nor an `audience`)."""
    found: list[Diagnostic] = []
    ordered = sorted(plans.values(), key=lambda plan: plan.source_file)
    for position, second in enumerate(ordered):
        kind = _audience_of(second)
        for first in ordered[:position]:
            if kind is None or _audience_of(first) != kind:
                continue
            if _ignores_overlaps(first) or _ignores_overlaps(second):
                continue
            reason = _overlap(first, second, samples)
            if reason is None:
                continue
            line, col = _trigger_position(second.source_file)
            message = (
                f"targets the same contacts as {first.source_file} ({kind}; {reason}) with no "
                "exclusion: a contact can be in both at once; exclude one journey's contacts "
                "from the other in its `audience`, `segment` or `when`"
            )
            found.append(lint(second.source_file, line, col, "overlapping-journeys", message))
    return found


def _overlap(first: JourneyPlan, second: JourneyPlan, samples: SampleChecks | None) -> str | None:
    """Why the two journeys may enter the same contacts, or None when the samples tell them
    apart (no sample contact enters both, and every one is decided for both)."""
    if samples is None:
        unfiltered = all(
            plan.journey.audience is None and getattr(plan.journey.trigger, "when", None) is None
            for plan in (first, second)
        )
        return "neither filters it" if unfiltered else None
    both = samples.entrants.get(first.journey_id, set()) & samples.entrants.get(
        second.journey_id, set()
    )
    if both:
        return f"{', '.join(sorted(both))} {'enters' if len(both) == 1 else 'enter'} both"
    undecided = samples.undecided.get(first.journey_id, set()) | samples.undecided.get(
        second.journey_id, set()
    )
    if undecided:
        return f"the samples cannot tell them apart: undecided for {', '.join(sorted(undecided))}"
    return None


def _render(
    bundle: TemplateBundle, send: SendStep, variables: dict[str, Any], person: ContactFile
) -> None:
    if send.send == "email":
        render_email(bundle, variables, locale=person.locale)
    else:
        render_sms(bundle, variables, locale=person.locale, marketing=send.category == "marketing")


def _keep(found: dict[tuple[str, int, str], Diagnostic], error: RenderError, where: str) -> None:
    file, line = error.file or "templates", error.line or 1
    message = str(error).removeprefix(f"{file}:{line}: ")
    key = (file, line, message)
    if key not in found:  # the first contact that shows it is enough
        found[key] = Diagnostic(file, line, 1, f"{message} ({where})")
