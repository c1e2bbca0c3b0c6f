"""Compiled traits (`TraitProgram`) and how they are kept current as each event is stored.

`TraitProgram` is the store's `TraitUpdater`: `Store.record_event` hands it every new event with
the contact's current trait rows, inside the event's transaction. Each aggregate keeps just what
it needs to take one more event in O(1) — a count, a sum, a min or max, the timestamp of the
first or last value (so history arriving out of order still ends right), sum and count for an
average — and derived traits (`value:`) are re-evaluated, in dependency order, when an aggregate
they read changed. Rolling windows (`within:`) only ever grow here: events leaving the window
are taken out by the traits schedule and `rapport traits rebuild` (`runtime/traits.py`), which
recompute in SQL.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import JsonValue

from workflows.expressions import (
    ExpressionContext,
    ExpressionError,
    evaluate_condition,
    evaluate_expression,
    to_datetime,
)
from workflows.fast_expressions import Unsure, compile_fast
from workflows.trait_model import BUILTIN, TIMESTAMP, Kind

if TYPE_CHECKING:  # the store is imported when traits run, not when `rapport validate` checks them
    from store.records import ContactRecord, EventRecord
    from store.traits import TraitRow


def utcnow() -> datetime:
    return datetime.now(UTC)


# What a derived trait reads for an aggregate that has no row yet.
EMPTY = {"count": 0, "sum": 0}


def iso_second(moment: datetime) -> str:
    """A timestamp as trait values hold it: ISO 8601 in UTC to the second (as SQL writes it)."""
    return moment.isoformat(timespec="seconds")


def _scalar(value: Any) -> JsonValue:
    """A derived trait's value: a scalar, else none."""
    return value if isinstance(value, str | int | float | bool) else None


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


@dataclass(frozen=True)
class Aggregate:
    name: str
    kind: Kind
    event: str
    property: str | None  # None: the event itself; TIMESTAMP: when it happened
    within: timedelta | None = None
    when: str | None = None

    @cached_property
    def stamped(self) -> bool:
        """Whether the value it takes is the event's timestamp (`iso_second`)."""
        return self.property == TIMESTAMP or (
            self.property is None and self.kind in ("first", "last")
        )

    def reading(self, event: EventRecord, stamp: str | None = None) -> tuple[bool, JsonValue]:
        """(does the event count, the value it brings); `stamp`: the event's `iso_second`,
        when already known."""
        if self.stamped:
            return True, iso_second(event.timestamp) if stamp is None else stamp
        if self.property is None:
            return True, None
        if self.property not in event.properties:
            return False, None
        value = event.properties[self.property]
        if value is None:
            return False, None
        if self.kind in ("sum", "avg", "min", "max") and _number(value) is None:
            return False, None
        return True, value

    @cached_property
    def _fast_when(self) -> Callable[[Any], Any] | None:
        """`when` compiled once (workflows/fast_expressions.py), None: the expression engine."""
        return None if self.when is None else compile_fast(self.when, "event")

    def admits(self, event: EventRecord, now: datetime) -> bool:
        if event.name != self.event:
            return False
        if self.within is not None and event.timestamp < now - self.within:
            return False
        if self.when is None:
            return True
        variables = {
            "id": event.message_id or "",
            "name": event.name,
            "properties": event.properties,
            "timestamp": event.timestamp.isoformat(),
        }
        fast = self._fast_when
        if fast is not None:
            try:
                return bool(fast(variables))
            except Unsure:
                pass
        variables["properties"] = dict(event.properties)
        context = ExpressionContext(now=event.timestamp).with_event(variables)
        try:
            return evaluate_condition(self.when, context)
        except ExpressionError:
            return False  # e.g. the property is missing on this event: it does not count

    def take(
        self, row: TraitRow | None, event: EventRecord, stamp: str | None = None
    ) -> TraitRow | None:
        """The row after one more event (`row` None: the trait has no row yet; `stamp` as for
        `reading`), or None when the event changes nothing."""
        from store.traits import TraitRow

        counts, value = self.reading(event, stamp)
        if not counts:
            return None
        kind = self.kind
        current: JsonValue = None if row is None else row.value
        state: Mapping[str, Any] = {} if row is None else row.state
        if kind == "count":
            return TraitRow((_number(current) or 0) + 1, dict(state))
        number = _number(value)
        if kind == "sum" and number is not None:
            return TraitRow((_number(current) or 0) + number, dict(state))
        if kind == "avg" and number is not None:
            total = (state.get("sum") or 0) + number
            n = (state.get("count") or 0) + 1
            return TraitRow(total / n, {"sum": total, "count": n})
        if kind in ("min", "max"):
            if current is None:
                return TraitRow(value, dict(state))
            if isinstance(value, str) != isinstance(current, str):
                return None  # a timestamp against a number: the trait's own type wins
            better = value < current if kind == "min" else value > current  # type: ignore[operator]
            return TraitRow(value, dict(state)) if better else None
        at = event.timestamp
        seen = to_datetime(state["at"]) if state.get("at") else None
        if seen is not None and (at >= seen if kind == "first" else at < seen):
            return None
        return TraitRow(value, {"at": at.isoformat()})


@dataclass(frozen=True)
class Derived:
    name: str
    expression: str
    reads: frozenset[str] = frozenset()  # the NAMEs of contact.NAME it reads
    opaque: bool = False  # it uses `contact` in a way that does not name what it reads


@dataclass(frozen=True)
class TraitProgram:
    """Every trait of `traits/`, checked; derived traits in dependency order."""

    aggregates: tuple[Aggregate, ...] = ()
    derived: tuple[Derived, ...] = ()
    files: tuple[str, ...] = ()
    clock: Any = field(default=utcnow, compare=False, repr=False)

    @cached_property
    def by_event(self) -> dict[str, tuple[Aggregate, ...]]:
        found: dict[str, list[Aggregate]] = {}
        for aggregate in self.aggregates:
            found.setdefault(aggregate.event, []).append(aggregate)
        return {name: tuple(items) for name, items in found.items()}

    @cached_property
    def version(self) -> str:
        text = json.dumps(
            [
                [
                    [a.name, a.kind, a.event, a.property, str(a.within), a.when]
                    for a in self.aggregates
                ],
                [[d.name, d.expression] for d in self.derived],
            ]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.aggregates] + [d.name for d in self.derived]

    @cached_property
    def reads_profile(self) -> bool:
        """Whether a derived trait reads the contact's profile or attributes (anything but
        traits), so that the store must load them, and an attribute change re-derives."""
        traits = {a.name for a in self.aggregates} | {d.name for d in self.derived}
        return any(d.opaque or not d.reads <= traits | set(BUILTIN) for d in self.derived)

    @property
    def windowed(self) -> tuple[Aggregate, ...]:
        return tuple(a for a in self.aggregates if a.within is not None)

    # -- the store's TraitUpdater -----------------------------------------------------------

    def concerns(self, event_name: str) -> bool:
        return event_name in self.by_event

    def apply(
        self,
        event: EventRecord,
        contact: Callable[[], ContactRecord],
        rows: Mapping[str, TraitRow],
    ) -> dict[str, TraitRow]:
        from store.traits import TraitRow

        now = self.clock()
        changed: dict[str, TraitRow] = {}
        aggregates = self.by_event.get(event.name, ())
        # The event's timestamp as first/last values hold it, once for all of them.
        stamp = iso_second(event.timestamp) if any(a.stamped for a in aggregates) else None
        for aggregate in aggregates:
            if not aggregate.admits(event, now):
                continue
            after = aggregate.take(rows.get(aggregate.name), event, stamp)
            if after is not None:
                changed[aggregate.name] = after
        if changed and self.derived:
            values = {name: row.value for name, row in rows.items()}
            values.update({name: row.value for name, row in changed.items()})
            for name, value in self._derive_from_traits(contact, values, now).items():
                row = rows.get(name)
                if (None if row is None else row.value) != value:
                    changed[name] = TraitRow(value)
        return changed

    @cached_property
    def _fast_derived(self) -> tuple[Callable[[Any], Any] | None, ...]:
        """Each derived trait's expression compiled once (`compile_fast`; None: the engine)."""
        return tuple(compile_fast(d.expression, "contact") for d in self.derived)

    @property
    def defaults(self) -> dict[str, JsonValue]:
        """What a derived trait reads for an aggregate without a row (0 for counts, sums)."""
        return {a.name: EMPTY[a.kind] for a in self.aggregates if a.kind in EMPTY}

    @cached_property
    def derives_in_sql(self) -> bool:
        """Whether every derived trait names what it reads, none of it a timestamp column
        (SQL's text of `created_at` is not Python's): then a rebuild derives them by distinct
        inputs in SQL (`runtime/traits.py`), else a page of contacts at a time."""
        return not any(d.opaque or d.reads & {"created_at", "updated_at"} for d in self.derived)

    def evaluate(self, item: Derived, view: Mapping[str, Any], now: datetime) -> JsonValue:
        """One derived trait's value for `contact.*` = `view`; None when it fails (e.g. it
        reads an attribute this contact lacks) or gives no scalar."""
        fast = compile_fast(item.expression, "contact")  # workflows/fast_expressions.py
        if fast is not None:
            try:
                return _scalar(fast(view))
            except Unsure:
                pass
        try:
            value = evaluate_expression(item.expression, ExpressionContext(now, contact=view))
        except ExpressionError:
            return None
        return _scalar(value)

    def rederive(self, contact: ContactRecord, rows: Mapping[str, TraitRow]) -> dict[str, TraitRow]:
        """After the contact's attributes or profile changed: its derived traits that now
        differ (none when no derived trait reads more than traits)."""
        from store.traits import TraitRow

        if not self.reads_profile:
            return {}
        values = {name: row.value for name, row in rows.items()}
        return {
            name: TraitRow(value)
            for name, value in self.derive(contact, values, self.clock()).items()
            if rows.get(name, TraitRow()).value != value
        }

    def _derive_from_traits(
        self,
        contact: Callable[[], ContactRecord],
        values: Mapping[str, JsonValue],
        now: datetime,
    ) -> dict[str, JsonValue]:
        """`derive`, without building the contact's whole `contact.*` when no derived trait
        reads more than traits and each is compiled (`compile_fast`): then what they read is in
        `values` (with the defaults), and a name missing there is `Unsure`, decided by
        `derive` on the whole contact."""
        if not self.reads_profile:
            view = {k: v for k, v in {**self.defaults, **values}.items() if v is not None}
            derived: dict[str, JsonValue] = {}
            for item, fast in zip(self.derived, self._fast_derived, strict=True):
                if fast is None:
                    break
                try:
                    value = _scalar(fast(view))
                except Unsure:
                    break
                derived[item.name] = value
                if value is None:
                    view.pop(item.name, None)
                else:
                    view[item.name] = value
            else:
                return derived
        return self.derive(contact(), values, now)

    def derive(
        self, contact: ContactRecord, values: Mapping[str, JsonValue], now: datetime
    ) -> dict[str, JsonValue]:
        """The derived traits' values for a contact whose other traits are `values`."""
        view = contact.model_copy(update={"traits": {**self.defaults, **values}}).flattened()
        derived: dict[str, JsonValue] = {}
        for item in self.derived:
            json_value = self.evaluate(item, view, now)
            derived[item.name] = json_value
            if json_value is None:
                view.pop(item.name, None)
            else:
                view[item.name] = json_value
        return derived
