"""The trait language (SPEC §5b) as pydantic models: `traits/*.yaml` maps trait names to
definitions.

    lifetime_spend:
      sum: order_placed.total          # count | sum | avg | min | max | first | last
    orders_90d:
      count: order_placed
      within: 90d                      # optional rolling window
      when: event.properties.total > 0 # optional filter on the event
    tier:
      value: '"gold" if contact.lifetime_spend >= 500 else "bronze"'   # derived

An aggregate reads `EVENT[.PROPERTY]`: the event name, then (after the first dot) one of its
properties, or `timestamp` for when it happened. `count` needs no property; `sum`, `avg`, `min`
and `max` need a numeric one; `first` and `last` without a property mean the timestamp.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from workflows.model import Duration

AGGREGATES = ("count", "sum", "avg", "min", "max", "first", "last")
Kind = Literal["count", "sum", "avg", "min", "max", "first", "last"]
NUMERIC = frozenset({"sum", "avg", "min", "max"})
TIMESTAMP = "timestamp"
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# Built in (SPEC §5b): computed by the RFM schedule and `rapport traits rebuild`.
BUILTIN = ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_score", "rfm_segment")
# contact.* names that are profile fields, not traits.
PROFILE = frozenset({"id", "email", "phone", "timezone", "locale", "created_at", "updated_at"})

TraitName = Annotated[str, Field(pattern=NAME.pattern, max_length=64)]


class Source(BaseModel):
    """`EVENT[.PROPERTY]` parsed."""

    model_config = ConfigDict(frozen=True)

    event: str
    property: str | None = None

    @classmethod
    def parse(cls, text: str) -> Source:
        event, _, prop = text.strip().partition(".")
        if not event:
            raise ValueError(f"expected EVENT or EVENT.PROPERTY, got {text!r}")
        if _ and not prop:
            raise ValueError(f"{text!r} ends with a dot: name a property after it")
        return cls(event=event, property=prop or None)

    def __str__(self) -> str:
        return f"{self.event}.{self.property}" if self.property else self.event


class TraitDefinition(BaseModel):
    """One trait: exactly one of the aggregates (`count` … `last`) or `value`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = Field(None, description="What the trait means, for people.")
    count: str | None = Field(None, description="How many EVENT (with EVENT.PROPERTY: having it).")
    sum: str | None = Field(None, description="Sum of EVENT.PROPERTY (a number).")
    avg: str | None = Field(None, description="Average of EVENT.PROPERTY (a number).")
    min: str | None = Field(None, description="Smallest EVENT.PROPERTY (a number).")
    max: str | None = Field(None, description="Largest EVENT.PROPERTY (a number).")
    first: str | None = Field(
        None, description="EVENT.PROPERTY of the earliest EVENT (no property: its timestamp)."
    )
    last: str | None = Field(
        None, description="EVENT.PROPERTY of the latest EVENT (no property: its timestamp)."
    )
    within: Duration | None = Field(
        None,
        description="Only events of this rolling window (e.g. 90d); kept honest by a schedule.",
    )
    when: str | None = Field(
        None,
        description="Only events for which this condition on `event` holds, e.g. "
        "event.properties.total > 0.",
    )
    value: str | None = Field(
        None,
        description="A derived trait: an expression over contact.* (attributes and other "
        'traits), e.g. \'"gold" if contact.lifetime_spend >= 500 else "silver"\'.',
    )

    @model_validator(mode="after")
    def _one_kind(self) -> TraitDefinition:
        kinds = [k for k in (*AGGREGATES, "value") if getattr(self, k) is not None]
        if not kinds:
            raise ValueError(
                f"a trait needs one of {', '.join(AGGREGATES)} (EVENT[.PROPERTY]) or value "
                "(an expression)"
            )
        if len(kinds) > 1:
            raise ValueError(
                f"a trait has one of {', '.join(AGGREGATES)} or value; this one has "
                f"{' and '.join(kinds)}"
            )
        if self.value is not None and (self.within is not None or self.when is not None):
            raise ValueError(
                "within and when filter events: a derived trait (value) has none; "
                "put them on the aggregate traits it reads"
            )
        return self

    @property
    def kind(self) -> Kind | Literal["value"]:
        for kind in AGGREGATES:
            if getattr(self, kind) is not None:
                return kind  # type: ignore[return-value]
        return "value"

    @property
    def source(self) -> str | None:
        kind = self.kind
        return None if kind == "value" else getattr(self, kind)


class TraitsFile(RootModel[dict[TraitName, TraitDefinition]]):
    """A `traits/*.yaml` file: trait name -> definition."""


def schema() -> dict[str, Any]:
    """The JSON Schema of `traits/*.yaml`, for editors (`rapport schema --traits`)."""
    result = TraitsFile.model_json_schema()
    result["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    result["title"] = "Rapport traits"
    return result
