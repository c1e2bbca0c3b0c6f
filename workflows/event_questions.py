"""What expressions may ask about a contact's events, and the answers runs carry instead of events.

`count_events(name, within=…)` and `last_event(name)` take literal arguments, so the compiler
knows every question a journey (or a template) can ask (`expressions.event_questions`). The store
answers exactly those with indexed queries (`activities/contact_context.py`), and an expression
context carries the answers — a few numbers and at most one event per name — never the raw
history, whatever the contact's number of events.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class EventQuestion(BaseModel):
    """One `count_events(name, within)` or `last_event(name)` call, by its literal arguments."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["count", "last"]
    name: str
    within: str | None = Field(None, description="count: the window as written, e.g. '60d'.")

    @property
    def key(self) -> str:
        return answer_key(self.kind, self.name, self.within)

    def call(self) -> str:
        """The call as an expression writes it, for messages."""
        if self.kind == "last":
            return f"last_event({self.name!r})"
        window = f", within={self.within!r}" if self.within is not None else ""
        return f"count_events({self.name!r}{window})"


def answer_key(kind: str, name: str, within: str | None = None) -> str:
    return f"{kind}:{name}" if within is None else f"{kind}:{name}:{within}"


class LatestEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    timestamp: datetime
    properties: dict[str, Any] = Field(default_factory=dict)

    def as_variables(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "timestamp": self.timestamp.isoformat(),
            "properties": dict(self.properties),
        }


class EventAnswers(BaseModel):
    """The answers to a set of questions for one contact at one moment."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    counts: dict[str, int] = Field(default_factory=dict, description="By `EventQuestion.key`.")
    latest: dict[str, LatestEvent | None] = Field(
        default_factory=dict, description="By `EventQuestion.key`; None: no such event."
    )

    @model_serializer(mode="wrap")
    def _without_empty(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Carried in run histories (the contact snapshot): no empty `{}` there.
        data = handler(self)
        return {k: v for k, v in data.items() if v} if isinstance(data, dict) else data


def sorted_questions(questions: Iterable[EventQuestion]) -> tuple[EventQuestion, ...]:
    """A stable order, so a plan and a payload built from the same questions are identical."""
    return tuple(sorted(set(questions), key=lambda q: (q.kind, q.name, q.within or "")))
