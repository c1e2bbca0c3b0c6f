"""`rapport validate` renders every message against the samples (issue 16 item 1).

Each template a compiled journey sends is rendered, in the contact's locale, for every contact
file in `contacts/`, with the variables the send activity builds (`message_variables`, the same
path as `rapport preview`) and a sample trigger: the first event of the journey's trigger in
`simulations/*.yaml`. What a sample cannot know — what earlier steps produced, a trigger no
simulation holds — stands in as a placeholder. A contact that would not enter the journey (its
segment, audience or trigger `when` is false for it) is skipped. A render that fails is what
would fail at send time: an error at the template's FILE:LINE, naming the contact file (once per
problem).
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
from workflows.diagnostics import Diagnostic, display_path
from workflows.entry import entry_refusal, start_refusal
from workflows.event_questions import EventQuestion
from workflows.model import EventTrigger, SendStep
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


def _sends(plan: JourneyPlan) -> list[SendStep]:
    """One send step per template of the plan."""
    seen: dict[str, SendStep] = {}
    for step in plan.journey.steps:
        if isinstance(step, SendStep):
            seen.setdefault(f"{step.send}:{step.template}", step)
    return list(seen.values())


@dataclass
class SampleRenders:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)  # journeys with a template that fails


def render_samples(settings: Settings, plans: dict[str, JourneyPlan]) -> SampleRenders:
    """Every problem met rendering each plan's templates for each sample contact."""
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
    result = SampleRenders()
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
            if not _enters(plan, snapshot, sample, clock):
                continue  # a message it can never get cannot fail for it
            for send in _sends(plan):
                variables = message_variables(
                    snapshot,
                    journey_data=plan.journey.data,
                    trigger=sample.event if sample else None,
                    steps={},
                    now=clock,
                    settings=settings,
                    message_key=f"validate:{plan.journey_id}:{person.id}",
                )
                variables["steps"] = _Unknown(name="steps")
                if isinstance(trigger, EventTrigger) and sample is None:
                    variables["trigger"] = _Unknown(name="trigger")
                bundle = plan.template_for(send).for_locale(person.locale)
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
) -> bool:
    """Whether the contact would enter: the trigger's `when` on the sample event, the segment
    and the audience, decided as the router and the segment tick decide."""
    journey = plan.journey
    if isinstance(journey.trigger, EventTrigger) and sample is not None:
        context = snapshot.context(clock, journey=journey.data, event=sample.event)
        return start_refusal(journey, context) is None
    return entry_refusal(journey, snapshot.context(clock, journey=journey.data)) is None


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
