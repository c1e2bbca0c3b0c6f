"""Who enters a journey, and why not: one decision for the router, the segment tick,
`rapport segment` and `rapport simulate`, so that a simulation enters whom production would.

An event starts a run when it passes the trigger's `when` and the journey's `audience`
(`start_refusal`); a segment tick enrols a contact for whom the `segment` and the `audience` hold
(`entry_refusal`). `condition_readings` says what a condition read of the contact, to explain
a verdict to a person.
"""

from __future__ import annotations

from dataclasses import dataclass

from workflows.event_questions import sorted_questions
from workflows.expressions import (
    ExpressionContext,
    ExpressionError,
    Scope,
    attribute_paths,
    evaluate_condition,
    event_questions,
    parse_condition,
)
from workflows.model import EventTrigger, Journey

NOT_IN_AUDIENCE = "the contact is not in the journey's audience"


@dataclass(frozen=True)
class Refusal:
    """The condition (`segment`, `audience`) that is false for a contact, or that could not be
    evaluated for it (`error`)."""

    condition: str
    expression: str
    error: str | None = None

    def __str__(self) -> str:
        if self.error is not None:
            return f"the {self.condition} could not be evaluated: {self.error}"
        return f"the {self.condition} is false: {self.expression}"


def entry_refusal(journey: Journey, context: ExpressionContext) -> Refusal | None:
    """None when the contact of `context` is in the journey's segment (if it has one) and its
    audience (if it has one), as a segment tick decides."""
    segment = getattr(journey.trigger, "segment", None)
    for name, expression in (("segment", segment), ("audience", journey.audience)):
        if expression is None:
            continue
        try:
            if not evaluate_condition(expression, context):
                return Refusal(name, expression)
        except ExpressionError as error:
            return Refusal(name, expression, str(error))
    return None


def start_refusal(journey: Journey, context: ExpressionContext) -> str | None:
    """Why the event in `context` does not start a run of the (event-triggered) journey: its
    `when` or the audience; None when it starts one."""
    trigger = journey.trigger
    assert isinstance(trigger, EventTrigger)
    try:
        if trigger.when is not None and not evaluate_condition(trigger.when, context):
            return "trigger `when` is false for this event"
        if journey.audience is not None and not evaluate_condition(journey.audience, context):
            return NOT_IN_AUDIENCE
    except ExpressionError as error:
        return f"condition could not be evaluated: {error}"
    return None


def condition_readings(expression: str, context: ExpressionContext) -> list[str]:
    """What a segment or audience condition read of the contact: each `contact.X` it names and
    the answers to its `count_events`/`last_event` questions, e.g.
    `count_events('order_placed') = 2`, `last_event('order_placed') at 2026-10-15T09:00:00+00:00`.
    """
    try:
        tree = parse_condition(expression, Scope.SEGMENT)
        questions = sorted_questions(event_questions(tree))
    except ExpressionError:
        return []
    readings: list[str] = []
    for name in sorted(attribute_paths(tree, "contact")):
        value = context.contact.get(name)
        readings.append(
            f"contact.{name} is undefined" if value is None else f"contact.{name} = {value!r}"
        )
    for question in questions:
        if question.kind == "count":
            readings.append(f"{question.call()} = {context.events.counts.get(question.key, 0)}")
            continue
        latest = context.events.latest.get(question.key)
        readings.append(
            f"{question.call()} is none"
            if latest is None
            else f"{question.call()} at {latest.timestamp.isoformat()}"
        )
    return readings
