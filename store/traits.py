"""Computed contact traits in the store (SPEC §5b): rows, the hook that keeps them current as
events are stored, and `trait_changed` events.

The store knows nothing of the trait language. Whoever compiles `traits/*.yaml` installs a
`TraitUpdater` on the `Store`; from then on every stored event is handed to it, inside the
transaction that stores the event, with the contact and the contact's current trait rows, and
the rows it returns are written in the same transaction. So a trait never counts an event twice
and never misses one, whatever fails when. Each value that changes also stores a
`trait_changed` event (properties `{trait, old, new}`, the causing event's timestamp), for the
ingest path to route to journeys.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import JsonValue

from store.records import ContactRecord, EventRecord

TRAIT_CHANGED = "trait_changed"
TRAITS_SOURCE = "traits"  # the `source` of trait_changed events
ATTRIBUTES_CAUSE = "attributes"  # message ids of trait_changed events an attribute change caused


@dataclass(frozen=True)
class TraitRow:
    """A trait's value and the aggregate state it is kept from (e.g. `{"sum": …, "count": …}`
    for an average, `{"at": ISO}` for a first/last value)."""

    value: JsonValue = None
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TraitChange:
    contact_id: str
    trait: str
    old: JsonValue
    new: JsonValue
    at: datetime

    def event(self, cause: str) -> EventRecord:
        """The `trait_changed` event; `cause` (unique per change) makes its message id."""
        return EventRecord(
            contact_id=self.contact_id,
            name=TRAIT_CHANGED,
            properties={"trait": self.trait, "old": self.old, "new": self.new},
            timestamp=self.at,
            source=TRAITS_SOURCE,
            message_id=f"{cause}:{self.trait}"[:255],
        )


class TraitUpdater(Protocol):
    """The compiled traits, as the store sees them."""

    def concerns(self, event_name: str) -> bool:
        """Whether an event of this name can change any trait."""
        ...

    def apply(
        self,
        event: EventRecord,
        contact: Callable[[], ContactRecord],
        rows: Mapping[str, TraitRow],
    ) -> dict[str, TraitRow]:
        """The rows to write after `event` (only those that changed), given the contact's
        current rows; `contact()` builds the contact (profile, attributes and traits), which
        an updater calls only when it needs more than the rows."""
        ...


@runtime_checkable
class AttributeTraits(Protocol):
    """An updater whose derived traits read attributes or the profile (TraitProgram)."""

    reads_profile: bool

    def rederive(self, contact: ContactRecord, rows: Mapping[str, TraitRow]) -> dict[str, TraitRow]:
        """The derived rows that differ, for the contact as it is now."""
        ...


def value_text(value: JsonValue) -> str | None:
    """The value as text for grouping: a string as it is, anything else as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
