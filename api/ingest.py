"""Taking in one event durably: store it, route it, remember that it was routed (SPEC §7, §11).

This is what the HTTP API's `track` and `rapport event` share; it has no HTTP in it.

    stored -> routed -> marked routed

1. The contact is created if it is new (an event for an unknown contact creates it), in the
   transaction of step 2.
2. The event is stored. A duplicate — the same (contact, source, messageId) — stores nothing.
3. Unless it is a duplicate that was already routed, it is routed (`route_event`): the journeys
   it triggers are started and the runs listening for it are signalled. Temporal has durably
   accepted every start and signal when this returns; otherwise `TemporalUnavailableError` (or
   a database error) propagates and the event stays stored-but-unrouted.
4. The event is marked routed.

**Traits.** Storing the event updates the contact's traits in the same transaction
(`Store.record_event`), and each trait value that changes leaves a `trait_changed` event behind,
stored but unrouted. Step 3 routes those too, after the event itself, and marks them routed; a
retry routes the ones still unrouted.

**History.** An event whose timestamp is older than `max_age` (`RAPPORT_TRIGGER_MAX_AGE`, 24h)
when it arrives is stored and counts in traits, but step 3 is skipped for it and for the
`trait_changed` events it caused (they carry its timestamp): importing last year's orders starts
no run and signals none.

A retry after a failure at any step therefore finishes the job and does nothing twice: step 2
finds the duplicate, step 3 runs again because the event is not marked routed, and routing is
idempotent (starts are deduplicated by workflow id and reentry, signals by the event id inside
the run). Only a caller that got through step 4 may acknowledge the event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from temporalio.client import Client

from runtime.router import (
    EventIndex,
    RouteResult,
    is_history,
    route_contact_change,
    route_event,
)
from settings import Settings
from store import ContactRecord, EventRecord, Store
from workflows.diagnostics import Severity
from workflows.plan import JourneyPlan
from workflows.project import compile_project

log = logging.getLogger("rapport.api")

ClientGetter = Callable[[], Awaitable[Client]]

DEFAULT_TRIGGER_MAX_AGE = timedelta(hours=24)


def load_plans(settings: Settings) -> dict[str, JourneyPlan]:
    """Compile `journeys/`; journeys with errors are logged, one diagnostic a line, and skipped."""
    result = compile_project(settings)
    errors = sorted(d for d in result.diagnostics if d.severity is Severity.ERROR)
    for diagnostic in errors:
        log.error("%s", diagnostic)
    broken = sorted({d.file for d in errors})
    if broken:
        log.error("skipped invalid journeys (run `rapport validate`): %s", ", ".join(broken))
    log.info("loaded journeys: %s", ", ".join(sorted(result.plans)) or "none")
    return result.plans


@dataclass
class Ingested:
    """What `ingest_event` did. `duplicate`: the message id was seen before (nothing new was
    stored); `routed`: routing ran now (a new event, or a duplicate that had not been routed);
    `history`: older than the trigger max age, so stored and counted but not routed;
    `trait_changes`: the `trait_changed` events it caused that were handled now."""

    event: EventRecord
    duplicate: bool = False
    routed: bool = False
    history: bool = False
    route: RouteResult = field(default_factory=RouteResult)
    trait_changes: list[EventRecord] = field(default_factory=list)

    @property
    def runs_started(self) -> list[str]:
        return [r.workflow_id for r in self.route.started if r.started]

    def as_json(self) -> dict[str, object]:
        return {
            "contact_id": self.event.contact_id,
            "event": self.event.name,
            "message_id": self.event.message_id,
            "duplicate": self.duplicate,
            "routed": self.routed,
            "history": self.history,
            "traits_changed": [dict(change.properties) for change in self.trait_changes],
            **self.route.model_dump(mode="json"),
        }


async def route_all(
    store: Store,
    index: EventIndex,
    events: list[EventRecord],
    *,
    client: ClientGetter,
    task_queue: str,
) -> RouteResult:
    """Route each event a journey cares about, in order (Temporal only contacted then)."""
    result = RouteResult()
    for target in events:
        if index.concerns(target.name):
            result.merge(
                await route_event(await client(), store, index, target, task_queue=task_queue)
            )
    return result


async def ingest_identify(
    store: Store,
    index: EventIndex,
    contact: ContactRecord,
    *,
    client: ClientGetter,
    task_queue: str,
) -> list[EventRecord]:
    """Store an identify's profile and attributes; the derived traits that read them are
    recomputed in the same transaction, and the `trait_changed` events that leaves (with any
    an earlier identify of the contact left unrouted) are routed like an event's, then marked
    routed; the contact's runs waiting on a condition are told
    (`route_contact_change`). Returns those events."""
    _, changes = await asyncio.to_thread(store.identify, contact)
    if getattr(store.trait_updater, "reads_profile", False):
        # With those of an earlier identify of the contact that Temporal refused (503): its
        # retry finds the values changed already, so it changes nothing itself.
        changes = await asyncio.to_thread(store.unrouted_attribute_changes, contact.id)
    await route_all(store, index, changes, client=client, task_queue=task_queue)
    if index.watch:
        # Runs waiting on a condition reload the contact and check again. Signalled on every
        # identify, not only on a change, so that the retry of one Temporal refused (503)
        # still reaches them; stored first, so they read the new values.
        await route_contact_change(client, store, index, contact.id)
    await asyncio.to_thread(store.mark_routed, changes)
    return changes


async def ingest_event(
    store: Store,
    index: EventIndex,
    event: EventRecord,
    *,
    client: ClientGetter,
    task_queue: str,
    max_age: timedelta = DEFAULT_TRIGGER_MAX_AGE,
    now: datetime | None = None,
) -> Ingested:
    """Store, route and mark the event (see the module docstring). `event.message_id` is
    required: it is what makes a retry safe. Temporal is only contacted (`client()`) when a
    journey cares about the event's name (or about `trait_changed`, when a trait changed)."""
    message_id = event.message_id
    if message_id is None:
        raise ValueError("ingest_event needs an event with a message_id")
    result = Ingested(event)
    stored = await asyncio.to_thread(partial(store.store_event, event, create_contact=True))
    if stored is None:
        result.duplicate = True
        routed = await asyncio.to_thread(
            store.event_routed, event.contact_id, event.source, message_id
        )
        if routed is not False:  # routed already (or erased meanwhile): nothing to do
            return result
        result.trait_changes = await asyncio.to_thread(store.unrouted_changes, event)
    else:
        result.trait_changes = stored.trait_changes
    result.history = is_history(event, max_age, now)
    if not result.history:
        result.route = await route_all(
            store, index, [event, *result.trait_changes], client=client, task_queue=task_queue
        )
    if stored is None:
        await asyncio.to_thread(
            partial(
                store.mark_event_routed,
                event.contact_id,
                event.source,
                message_id,
                with_events=result.trait_changes,
            )
        )
    else:
        ids = [stored.id, *(change.id for change in result.trait_changes if change.id)]
        await asyncio.to_thread(store.mark_routed_ids, ids)
    result.routed = True
    return result
