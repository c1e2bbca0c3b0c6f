"""Every expression a journey holds, with where it is written: one walk for the compiler's checks
and for the event questions a compiled plan carries."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes

from workflows.event_questions import EventQuestion, sorted_questions
from workflows.expressions import (
    ExpressionError,
    Scope,
    attribute_nodes,
    event_questions,
    parse_condition,
    parse_value,
)
from workflows.model import (
    BranchStep,
    EventTrigger,
    Journey,
    SegmentAtTrigger,
    SegmentScheduleTrigger,
    SendStep,
    UpdateStep,
    WaitForCondition,
    WaitForEvent,
    WaitForStep,
    WaitUntilStep,
    WebhookStep,
)
from workflows.source import Path as YamlPath


@dataclass(frozen=True)
class ExpressionSite:
    path: YamlPath
    text: str
    scope: Scope
    condition: bool  # a bare condition; otherwise a value that may hold {{ … }}

    def parse(self) -> nodes.Template | None:
        """The parsed expression (None: a plain value); raises ExpressionError."""
        if self.condition:
            return parse_condition(self.text, self.scope)
        return parse_value(self.text, self.scope)


def expression_sites(journey: Journey) -> Iterator[ExpressionSite]:
    def condition(path: YamlPath, text: str | None, scope: Scope) -> Iterator[ExpressionSite]:
        if text is not None:
            yield ExpressionSite(path, text, scope, condition=True)

    def value(path: YamlPath, text: Any) -> Iterator[ExpressionSite]:
        if isinstance(text, dict):
            for key, item in text.items():
                yield from value((*path, key), item)
        elif isinstance(text, list):
            for position, item in enumerate(text):
                yield from value((*path, position), item)
        elif isinstance(text, str):
            yield ExpressionSite(path, text, Scope.RUN, condition=False)

    trigger = journey.trigger
    if isinstance(trigger, EventTrigger):
        yield from condition(("trigger", "when"), trigger.when, Scope.EVENT_FILTER)
        if trigger.key is not None:
            yield from condition(("trigger", "key"), f"event.{trigger.key}", Scope.EVENT_FILTER)
    elif isinstance(trigger, SegmentScheduleTrigger | SegmentAtTrigger):
        yield from condition(("trigger", "segment"), trigger.segment, Scope.SEGMENT)
    yield from condition(("audience",), journey.audience, Scope.SEGMENT)
    if journey.goal is not None:
        yield from condition(("goal", "when"), journey.goal.when, Scope.EVENT_FILTER)
    for n, spec in enumerate(journey.exit_on):
        yield from condition(("exit_on", n, "when"), spec.when, Scope.EVENT_FILTER)
    for index, step in enumerate(journey.steps):
        at: YamlPath = ("steps", index)
        match step:
            case SendStep():
                yield from value((*at, "to"), step.to)
            case WaitForStep():
                yield from condition((*at, "when"), step.when, Scope.EVENT_FILTER)
                for n, alternative in enumerate(step.wait_for):
                    if isinstance(alternative, WaitForEvent):
                        where = (*at, "wait_for", n, "when")
                        yield from condition(where, alternative.when, Scope.EVENT_FILTER)
                    elif isinstance(alternative, WaitForCondition):
                        where = (*at, "wait_for", n, "condition")
                        yield from condition(where, alternative.condition, Scope.RUN)
            case BranchStep():
                for n, case in enumerate(step.branch):
                    yield from condition((*at, "branch", n, "when"), case.when, Scope.RUN)
            case UpdateStep():
                yield from value((*at, "update"), step.update)
            case WebhookStep():
                yield from value((*at, "webhook"), step.webhook)
                yield from value((*at, "body"), step.body)
            case WaitUntilStep():
                if isinstance(step.wait_until, str):  # not {time, days}
                    yield from value((*at, "wait_until"), step.wait_until)


def journey_event_questions(journey: Journey) -> tuple[EventQuestion, ...]:
    """The `count_events`/`last_event` questions of every expression of a (valid) journey."""
    found: set[EventQuestion] = set()
    for site in expression_sites(journey):
        try:
            tree = site.parse()
        except ExpressionError:
            continue  # reported by the compiler's checks; a plan is built only without errors
        if tree is not None:
            found |= event_questions(tree)
    return sorted_questions(found)


@dataclass(frozen=True)
class RunReads:
    """What a run's own expressions (everything but the trigger's) read of the contact and of
    `journey.*`: a run's history then carries only that much of its contact and its data."""

    contact: frozenset[str] | None  # None: the whole contact (read as a whole or by a variable)
    journey_data: bool
    questions: tuple[EventQuestion, ...] | None = None  # None: every question of the plan

    def contact_part(self, contact: dict[str, Any]) -> dict[str, Any]:
        if self.contact is None:
            return contact
        return {key: value for key, value in contact.items() if key in self.contact}


def run_reads(
    journey: Journey, *, audience: bool = True, steps: frozenset[int] | None = None
) -> RunReads:
    """`audience=False`: without the audience, which `open_run` judges for a JourneyV2 run;
    `steps`: only these steps' expressions (and the goal's and exit_on's, which any event may
    need), e.g. those a run reaches before its next wait."""
    attributes: set[str] = set()
    questions: set[EventQuestion] = set()
    whole = journey_data = False
    for site in expression_sites(journey):
        if site.path[0] == "trigger" or (site.path[0] == "audience" and not audience):
            continue  # the router's, before the run exists; the audience: see above
        if steps is not None and site.path[0] == "steps" and site.path[1] not in steps:
            continue
        try:
            tree = site.parse()
        except ExpressionError:
            # A plan is built only without errors; stay safe: everything.
            return RunReads(contact=None, journey_data=True)
        if tree is None:
            continue
        questions |= event_questions(tree)
        names = [name.name for name in tree.find_all(nodes.Name)]
        journey_data = journey_data or "journey" in names
        read = attribute_nodes(tree, "contact")
        if names.count("contact") > len(read):
            whole = True
        attributes.update(name for _, name in read)
    return RunReads(
        contact=None if whole else frozenset(attributes),
        journey_data=journey_data,
        questions=sorted_questions(questions),
    )
