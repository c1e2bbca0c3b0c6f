"""Routing behavioural events to journeys (SPEC §3, §7, §11).

An event (a) starts every journey whose event trigger, `when` and audience match — one run per
contact, or per contact and key for keyed triggers — and (b) is delivered as a signal to the
contact's running runs whose journeys listen for it (`wait_for`, `goal`, `exit_on`). An index
built once from the compiled plans means an event only touches the journeys that name it.

Delivery is at-least-once and every effect is idempotent: starts are deduplicated by workflow id
and the reentry rules, signals by the event id inside the workflow. So `route_event` may be
retried after a failure (the API answers 503 and the sender retries) without doing anything twice.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, computed_field, field_serializer
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.contact_context import contact_snapshot, event_payload
from runtime.starter import StartResult, TemporalUnavailableError, is_unavailable, start_run
from store import Store
from store.records import ContactRecord, EventRecord
from workflows.contracts import ContactSnapshot
from workflows.entry import start_refusal
from workflows.expressions import (
    ExpressionContext,
    ExpressionError,
    evaluate_expression,
)
from workflows.ids import workflow_id_for
from workflows.journey_workflow import JourneyWorkflow
from workflows.model import EventTrigger
from workflows.plan import JourneyPlan, listened_events


@dataclass(frozen=True)
class EventIndex:
    """Event name -> the journeys it may start, and the journeys whose runs listen for it;
    and the journeys whose runs wait on conditions over the contact (`watch`)."""

    plans: Mapping[str, JourneyPlan]
    starts: Mapping[str, tuple[str, ...]]
    listens: Mapping[str, frozenset[str]]
    watch: frozenset[str] = frozenset()

    @classmethod
    def build(cls, plans: Mapping[str, JourneyPlan]) -> EventIndex:
        starts: dict[str, list[str]] = defaultdict(list)
        listens: dict[str, set[str]] = defaultdict(set)
        for journey_id, plan in sorted(plans.items()):
            trigger = plan.journey.trigger
            if isinstance(trigger, EventTrigger):
                starts[trigger.event].append(journey_id)
            for name in listened_events(plan):
                listens[name].add(journey_id)
        return cls(
            plans=dict(plans),
            starts={name: tuple(ids) for name, ids in starts.items()},
            listens={name: frozenset(ids) for name, ids in listens.items()},
            watch=frozenset(j for j, plan in plans.items() if plan.watches_contact()),
        )

    def concerns(self, name: str) -> bool:
        return name in self.starts or name in self.listens


class RouteResult(BaseModel):
    """What routing did. Its JSON: `started`, the workflow ids of the runs started;
    `signalled`; `not_started`, journey -> why (skipped here or refused by `start_run`)."""

    started: list[StartResult] = Field(default_factory=list)
    signalled: list[str] = Field(default_factory=list)  # workflow ids
    skipped: dict[str, str] = Field(default_factory=dict, exclude=True)  # journey -> why not

    @field_serializer("started")
    def _started_ids(self, started: list[StartResult]) -> list[str]:
        return [r.workflow_id for r in started if r.started]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def not_started(self) -> dict[str, str]:
        return {
            **self.skipped,
            **{r.journey: r.reason or "" for r in self.started if not r.started},
        }

    def merge(self, other: RouteResult) -> None:
        """Add what routing another event (a `trait_changed` it caused) did."""
        self.started.extend(other.started)
        self.signalled.extend(other.signalled)
        self.skipped.update(other.skipped)


def _keyed(plan: JourneyPlan) -> bool:
    trigger = plan.journey.trigger
    return isinstance(trigger, EventTrigger) and trigger.key is not None


def _key_of(plan: JourneyPlan, context: ExpressionContext) -> str | None:
    trigger = plan.journey.trigger
    if not isinstance(trigger, EventTrigger) or trigger.key is None:
        return None
    try:
        value = evaluate_expression(f"event.{trigger.key}", context)
    except ExpressionError:
        return None
    return None if value is None else str(value)


async def route_event(
    client: Client,
    store: Store,
    index: EventIndex,
    event: EventRecord,
    *,
    task_queue: str,
) -> RouteResult:
    """Start and signal what the (already stored) event concerns; raises
    `TemporalUnavailableError` if Temporal does not accept every start and signal."""
    result = RouteResult()
    if not index.concerns(event.name):
        return result
    payload = event_payload(event)
    # What the `when` and audience of the journeys this event may start ask about the contact's
    # events, answered as of the event (which is stored, so it counts).
    questions = {
        question
        for journey_id in index.starts.get(event.name, ())
        for question in index.plans[journey_id].event_questions
    }

    def read() -> tuple[ContactSnapshot, set[str]]:
        # The store's reads in one thread hop (each hop waits for the GIL behind the process's
        # other threads), on one connection.
        with store.one_connection():
            contact = store.get_contact(event.contact_id)
            if contact is None:
                contact = store.upsert_contact(ContactRecord(id=event.contact_id))
            snapshot = contact_snapshot(
                store, contact.id, questions, payload.timestamp, record=contact
            )
            return snapshot, store.paused_journeys()

    snapshot, paused = await asyncio.to_thread(read)
    for journey_id in index.starts.get(event.name, ()):
        plan = index.plans[journey_id]
        if journey_id in paused:
            result.skipped[journey_id] = f"journey {journey_id!r} is paused"
            continue
        context = snapshot.context(
            payload.timestamp, journey=plan.data_at(payload.timestamp), event=payload.as_variables()
        )
        why = start_refusal(plan.journey, context)
        if why is not None:
            result.skipped[journey_id] = why
            continue
        key = _key_of(plan, context)
        started = await start_run(
            client,
            store,
            plan,
            event.contact_id,
            trigger=payload,
            key=key,
            task_queue=task_queue,
            now=event.timestamp,
            paused=False,  # read above
        )
        result.started.append(started)
    just_started = {r.workflow_id for r in result.started if r.started}
    listeners = index.listens.get(event.name, frozenset())
    targets = await _running(store, index, event.contact_id, listeners) - just_started
    for workflow_id in sorted(targets):
        if await _signal(client, workflow_id, JourneyWorkflow.on_event, payload):
            result.signalled.append(workflow_id)
    return result


async def route_contact_change(
    client: Callable[[], Awaitable[Client]], store: Store, index: EventIndex, contact_id: str
) -> list[str]:
    """Tell the contact's runs that wait on a condition that its attributes changed (an
    identify): they reload the contact and check again. Only runs of journeys with a
    condition are looked up, through the contact's runs (an index), never a scan; Temporal
    is contacted only when there are any. Returns the workflow ids signalled."""
    targets = await _running(store, index, contact_id, index.watch)
    signalled: list[str] = []
    for workflow_id in sorted(targets):
        if await _signal(await client(), workflow_id, JourneyWorkflow.on_contact_changed):
            signalled.append(workflow_id)
    return signalled


async def _running(
    store: Store, index: EventIndex, contact_id: str, journeys: frozenset[str]
) -> set[str]:
    """The workflow ids of the contact's runs of `journeys` that may be running."""
    if not journeys:
        return set()
    # Unkeyed runs have a known id, so a run started a moment ago (not yet in the store)
    # is found too; keyed runs are found through the store.
    targets = {
        workflow_id_for(journey_id, contact_id)
        for journey_id in journeys
        if not _keyed(index.plans[journey_id])
    }
    runs = await asyncio.to_thread(store.runs_for_contact, contact_id)
    targets.update(
        run.workflow_id for run in runs if run.status == "running" and run.journey in journeys
    )
    return targets


def is_history(event: EventRecord, max_age: timedelta, now: datetime | None = None) -> bool:
    """Whether the event is too old to start or signal anything (SPEC §5b)."""
    return event.timestamp < (now or datetime.now(UTC)) - max_age


async def route_trait_changes(
    store: Store,
    index: EventIndex,
    client: Callable[[], Awaitable[Client]],
    *,
    task_queue: str,
    max_age: timedelta,
    now: datetime | None = None,
) -> RouteResult:
    """Route the stored `trait_changed` events nobody routed yet (a rebuild's), oldest first,
    and mark them routed; those older than `max_age` are history and only marked. Temporal is
    contacted (`client()`) only when a journey listens for `trait_changed`."""
    result = RouteResult()
    while batch := await asyncio.to_thread(store.unrouted_trait_changes, 200):
        for event in batch:
            if index.concerns(event.name) and not is_history(event, max_age, now):
                routed = await route_event(
                    await client(), store, index, event, task_queue=task_queue
                )
                result.merge(routed)
        await asyncio.to_thread(store.mark_routed, batch)
    return result


async def _signal(client: Client, workflow_id: str, signal: Any, *args: Any) -> bool:
    handle = client.get_workflow_handle(workflow_id)
    try:
        await handle.signal(signal, *args)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False  # the run ended meanwhile; nothing to deliver
        if is_unavailable(error):
            raise TemporalUnavailableError("Temporal", error.message) from None
        raise
    return True
