"""Traits at run time (SPEC §5b): compiling `traits/`, installing them on a store so each stored
event updates them, and recomputing them — all of them (`rapport traits rebuild`) or the rolling
windows and RFM (the nightly `traits:rfm` schedule).

A rebuild recomputes every aggregate trait in SQL (`store/trait_rebuild.py`), then RFM in SQL
(`store/rfm.py`), then the derived traits a page of contacts at a time (their expressions are
evaluated in Python). Every value that changes leaves a `trait_changed` event at the rebuild's time;
`route_trait_changes` then starts and signals the journeys that listen for them, like any event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import JsonValue

from settings import Settings
from store import Store
from store.trait_rebuild import AggregateQuery, DerivedRead
from store.traits import TRAIT_CHANGED
from store.types import utcnow
from workflows.diagnostics import Severity
from workflows.model import EventTrigger
from workflows.plan import JourneyPlan, listened_events
from workflows.project import compile_project, compile_project_traits
from workflows.trait_model import BUILTIN, PROFILE
from workflows.trait_program import Aggregate, Derived, TraitProgram
from workflows.trait_sql import sql_filter, traits_named

log = logging.getLogger("rapport.traits")

DERIVED_PAGE = 500


def load_traits(settings: Settings) -> TraitProgram | None:
    """The compiled traits, or None (logged, one diagnostic a line) when they have errors."""
    result = compile_project_traits(settings)
    for diagnostic in sorted(result.diagnostics):
        if diagnostic.severity is Severity.ERROR:
            log.error("%s", diagnostic)
    if result.program is None and not result.ok:
        log.error("traits not kept current: fix traits/ (run `rapport validate`)")
    return result.program


def open_store(settings: Settings) -> Store:
    """The settings' store, keeping the project's traits current as events are stored."""
    store = Store.open(settings.database)
    install_traits(store, settings)
    return store


def install_traits(
    store: Store, settings: Settings, plans: Mapping[str, JourneyPlan] | None = None
) -> TraitProgram | None:
    """Keep the project's traits current on `store`, storing `trait_changed` events for the
    traits `plans` (default: the project's journeys) or a trait listen to."""
    program = load_traits(settings)
    if plans is None:
        plans = compile_project(settings).plans  # journeys with errors are left out
    store.use_traits(program, announced=listened_traits(plans, program))
    return program


def listened_traits(
    plans: Mapping[str, JourneyPlan], program: TraitProgram | None
) -> frozenset[str] | None:
    """The traits whose changes something reacts to: a journey starting on `trait_changed`
    with a `when` that names them, or an aggregate trait over `trait_changed` events. None
    (all of them) when a journey waits for, exits on, converts on or counts `trait_changed`,
    or its filter does not say which traits."""
    filters: list[str | None] = []
    for plan in plans.values():
        trigger = plan.journey.trigger
        if isinstance(trigger, EventTrigger) and trigger.event == TRAIT_CHANGED:
            filters.append(trigger.when)
        asked = {question.name for question in plan.event_questions}
        if TRAIT_CHANGED in listened_events(plan) | asked:
            return None
    for aggregate in program.aggregates if program is not None else ():
        if aggregate.event == TRAIT_CHANGED:
            filters.append(aggregate.when)
    names: set[str] = set()
    for when in filters:
        found = traits_named(when)
        if found is None:
            return None
        names |= found
    return frozenset(names)


def aggregate_query(aggregate: Aggregate, now: datetime) -> AggregateQuery:
    return AggregateQuery(
        name=aggregate.name,
        kind=aggregate.kind,
        event=aggregate.event,
        prop=aggregate.property,
        since=now - aggregate.within if aggregate.within is not None else None,
        condition=partial(sql_filter, aggregate.when) if aggregate.when is not None else None,
    )


@dataclass
class RebuildReport:
    aggregates: int = 0  # values changed
    derived: int = 0
    rfm: int = 0
    at: datetime | None = None

    @property
    def changed(self) -> int:
        return self.aggregates + self.derived + self.rfm

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat() if self.at else None,
            "changed": {"aggregates": self.aggregates, "derived": self.derived, "rfm": self.rfm},
        }


def rebuild_installed(store: Store, settings: Settings) -> RebuildReport:
    """`rebuild` with the traits installed on `store` (`open_store`)."""
    program = store.trait_updater if isinstance(store.trait_updater, TraitProgram) else None
    report = rebuild(store, program, settings)
    log.info("traits rebuilt: %d value(s) changed", report.changed)
    return report


def derived_reads(program: TraitProgram, item: Derived) -> list[DerivedRead]:
    """What SQL reads on each contact for `item` (sorted by name)."""
    traits = set(program.names) | set(BUILTIN)
    defaults = program.defaults
    return [
        DerivedRead(
            name=name,
            trait=name in traits,
            profile=name in PROFILE,
            empty=json.dumps(defaults[name]) if name in defaults else None,
        )
        for name in sorted(item.reads)
    ]


def rederive(store: Store, program: TraitProgram, cause: str, now: datetime) -> int:
    """Re-evaluate the derived traits of every contact: in SQL, once per distinct input, when
    they say what they read; else a page of contacts at a time."""
    if not program.derived:
        return 0
    if program.derives_in_sql:
        changed = 0
        for item in program.derived:  # in dependency order: each reads the ones before it
            reads = derived_reads(program, item)

            def evaluate(
                inputs: tuple[str | None, ...],
                item: Derived = item,
                reads: list[DerivedRead] = reads,
            ) -> str | None:
                view = {}
                for read, text in zip(reads, inputs, strict=True):
                    value = json.loads(text) if text is not None else None
                    if value is not None:
                        view[read.name] = value
                value = program.evaluate(item, view, now)
                return None if value is None else json.dumps(value)

            changed += store.rebuild_derived(item.name, reads, evaluate, cause=cause, now=now)
        return changed
    changed = 0
    for page in store.iter_contact_pages(DERIVED_PAGE):
        values: dict[str, dict[str, JsonValue]] = {}
        for contact in page:
            derived = program.derive(contact, contact.traits, now)
            differing = {k: v for k, v in derived.items() if contact.traits.get(k) != v}
            if differing:
                values[contact.id] = differing
        changed += len(store.set_traits_many(values, cause=cause, at=now))
    return changed


def rebuild(
    store: Store,
    program: TraitProgram | None,
    settings: Settings,
    *,
    windows_only: bool = False,
    now: datetime | None = None,
) -> RebuildReport:
    """Recompute traits (all, or only the rolling windows) and RFM; see the module docstring."""
    moment = now or utcnow()
    cause = f"rebuild:{moment.isoformat()}"
    report = RebuildReport(at=moment)
    if program is not None:
        aggregates = program.windowed if windows_only else program.aggregates
        queries = [aggregate_query(a, moment) for a in aggregates]
        report.aggregates = store.rebuild_aggregates(queries, cause=cause, now=moment)
    report.rfm = store.rebuild_rfm(
        settings.order_event, settings.revenue_property, cause=cause, now=moment
    )
    if program is not None:  # after RFM: a derived trait may read rfm_segment
        report.derived = rederive(store, program, cause, moment)
    return report
