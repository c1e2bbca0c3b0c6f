"""The segment tick's activity: enrol one page of contacts (see workflows/segment_workflow.py).

`enrol_page` reads at most `page_size` contacts after a cursor (keyset pagination on the
primary key), the event history those contacts' expressions can look at — in one query for the
whole page, only the event names the segment and audience name in `count_events`/`last_event`,
and at most `HISTORY_LIMIT` events per contact (what a run's `load_contact` sees) — and their
earlier runs of the journey, again in one query. It evaluates `segment` and `audience` with the
tick's time as `now()`, drops the contacts the journey's `reentry` keeps out and those this tick
already enrolled, and starts the rest through `runtime.starter.start_run` (the one place runs
start), at most `concurrency` at a time. Memory is one page, whatever the table's size.

Running a page again (a retried activity, a restarted tick) is harmless: `start_run` refuses a
contact already inside the journey (workflow id conflict) or kept out by `reentry`, and a run
started by this tick carries `segment_tick` in its data, which the next attempt sees.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from jinja2 import nodes
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.client import Client

from activities.journey_activities import flatten_contact
from runtime.starter import StartResult, UnknownContactError, reentry_refusal, start_run
from store import Store
from store.models import Contact, Event, Run
from store.records import ContactRecord, RunRecord
from store.sql import columns
from workflows.expressions import (
    ExpressionContext,
    ExpressionError,
    HistoryEvent,
    environment,
    evaluate_condition,
)
from workflows.journey_workflow import workflow_id_for
from workflows.plan import JourneyPlan
from workflows.segment_workflow import ENROL_PAGE, EnrolPageInput, PageResult

# Events per contact an expression can see: the same bound as a run's `load_contact`.
HISTORY_LIMIT = 500
TICK_DATA_KEY = "segment_tick"
HISTORY_FUNCTIONS = ("count_events", "last_event")
ERROR_SAMPLES_PER_PAGE = 3


class Starter(Protocol):
    def __call__(
        self,
        client: Client,
        store: Store,
        plan: JourneyPlan,
        contact_id: str,
        *,
        data: dict[str, Any] | None = ...,
        task_queue: str,
        paused: bool | None = ...,
    ) -> Awaitable[StartResult]: ...


@dataclass(frozen=True)
class HistoryNeeds:
    """Which events an expression can look at: `names` None means any name."""

    names: frozenset[str] | None = frozenset()
    properties: bool = False

    @property
    def none(self) -> bool:
        return self.names is not None and not self.names


def history_needs(expressions: Iterable[str]) -> HistoryNeeds:
    """The event names used by `count_events("…")`/`last_event("…")` in the expressions; any
    name when one is not a literal. Properties are loaded only for `last_event`."""
    names: set[str] = set()
    any_name = False
    properties = False
    for expression in expressions:
        tree = environment().parse("{{ (" + expression + "\n) }}")
        for call in tree.find_all(nodes.Call):
            target = call.node
            if not isinstance(target, nodes.Name) or target.name not in HISTORY_FUNCTIONS:
                continue
            properties = properties or target.name == "last_event"
            first: nodes.Expr | None = call.args[0] if call.args else None
            if first is None:
                first = next((kw.value for kw in call.kwargs if kw.key == "name"), None)
            if isinstance(first, nodes.Const) and isinstance(first.value, str):
                names.add(first.value)
            else:
                any_name = True
    return HistoryNeeds(None if any_name else frozenset(names), properties)


# --- bulk reads, one query each per page ----------------------------------------------------


def contacts_after(store: Store, after: str | None, limit: int) -> list[ContactRecord]:
    stmt = select(Contact).order_by(Contact.id).limit(limit)
    if after is not None:
        stmt = stmt.where(Contact.id > after)
    with Session(store.engine) as session:
        return [ContactRecord.model_validate(columns(row)) for row in session.scalars(stmt)]


def histories(
    store: Store, contact_ids: list[str], needs: HistoryNeeds, limit: int = HISTORY_LIMIT
) -> dict[str, list[HistoryEvent]]:
    """The latest `limit` events of each contact (of the needed names), in one query."""
    found: dict[str, list[HistoryEvent]] = defaultdict(list)
    if needs.none or not contact_ids:
        return found
    rank = (
        func.row_number()
        .over(partition_by=Event.contact_id, order_by=(Event.timestamp.desc(), Event.id.desc()))
        .label("rank")
    )
    wanted = [Event.contact_id, Event.name, Event.timestamp]
    if needs.properties:
        wanted.append(Event.properties)
    inner = select(*wanted, rank).where(Event.contact_id.in_(contact_ids))
    if needs.names is not None:
        inner = inner.where(Event.name.in_(sorted(needs.names)))
    ranked = inner.subquery()
    stmt = select(*(ranked.c[c.key] for c in wanted)).where(ranked.c.rank <= limit)
    with Session(store.engine) as session:
        for row in session.execute(stmt):
            timestamp = row.timestamp
            if timestamp.tzinfo is None:
                timestamp = timestamp.replace(tzinfo=UTC)
            properties = row.properties if needs.properties else {}
            found[row.contact_id].append(HistoryEvent(row.name, timestamp, properties or {}))
    return found


def earlier_runs(store: Store, journey: str, contact_ids: list[str]) -> dict[str, list[RunRecord]]:
    """The contacts' runs of `journey` (unkeyed: a segment journey has no trigger key)."""
    found: dict[str, list[RunRecord]] = defaultdict(list)
    if not contact_ids:
        return found
    stmt = select(Run).where(Run.journey == journey, Run.contact_id.in_(contact_ids))
    with Session(store.engine) as session:
        for row in session.scalars(stmt):
            run = RunRecord.model_validate(columns(row))
            if run.workflow_id == workflow_id_for(journey, run.contact_id):
                found[run.contact_id].append(run)
    return found


def is_paused(store: Store, plan: JourneyPlan) -> bool:
    return plan.journey.status == "paused" or plan.journey_id in store.paused_journeys()


# --- choosing a page's entrants ---------------------------------------------------------------


@dataclass
class Selection:
    """One page, evaluated: who to start and what became of the others."""

    result: dict[str, int] = field(default_factory=dict)
    to_start: list[str] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    next_after: str | None = None
    last_id: str | None = None
    journey_paused: bool = False

    def count(self, name: str, by: int = 1) -> None:
        self.result[name] = self.result.get(name, 0) + by


def select_page(store: Store, request: EnrolPageInput, now: datetime) -> Selection:
    """Read one page and decide, for each contact, whether the tick starts a run for it."""
    plan = request.plan
    journey = plan.journey
    selection = Selection()
    if is_paused(store, plan):
        selection.journey_paused = True
        selection.next_after = request.after
        return selection
    page = contacts_after(store, request.after, request.page_size)
    selection.count("scanned", len(page))
    if len(page) == request.page_size:
        selection.next_after = page[-1].id
    if not page:
        return selection
    selection.last_id = page[-1].id
    segment = getattr(journey.trigger, "segment", None)
    if segment is None:
        raise ValueError(f"journey {plan.journey_id!r} has no segment trigger")
    conditions = [segment] + ([journey.audience] if journey.audience else [])
    ids = [contact.id for contact in page]
    events = histories(store, ids, history_needs(conditions))
    runs = earlier_runs(store, plan.journey_id, ids)
    for contact in page:
        context = ExpressionContext(
            now=request.tick_at,
            contact=flatten_contact(contact),
            journey=journey.data,
            history=tuple(events.get(contact.id, ())),
        )
        try:
            matches = all(evaluate_condition(condition, context) for condition in conditions)
        except ExpressionError as error:
            selection.count("errors")
            if len(selection.error_samples) < ERROR_SAMPLES_PER_PAGE:
                selection.error_samples.append(f"{contact.id}: {error}")
            continue
        if not matches:
            continue
        selection.count("matched")
        earlier = runs.get(contact.id, [])
        if any(run.data.get(TICK_DATA_KEY) == request.tick_id for run in earlier):
            selection.count("already_enrolled")
        elif reentry_refusal(journey, earlier, now) is not None:
            selection.count("skipped_reentry")
        else:
            selection.to_start.append(contact.id)
    return selection


# --- the activity ---------------------------------------------------------------------------


class SegmentActivities:
    """Built with the store, a Temporal client and the task queue runs start on. `start` is
    `start_run` (a test or the benchmark may hand in another)."""

    def __init__(
        self,
        store: Store,
        client: Client,
        task_queue: str,
        *,
        start: Starter | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.task_queue = task_queue
        self._start: Starter = start or start_run
        self._clock = clock or (lambda: datetime.now(UTC))

    @activity.defn(name=ENROL_PAGE)
    async def enrol_page(self, request: EnrolPageInput) -> PageResult:
        selection = await asyncio.to_thread(select_page, self.store, request, self._clock())
        gate = asyncio.Semaphore(max(1, request.concurrency))
        data = {TICK_DATA_KEY: request.tick_id}

        async def enrol(contact_id: str) -> None:
            async with gate:
                try:
                    result = await self._start(
                        self.client,
                        self.store,
                        request.plan,
                        contact_id,
                        data=data,
                        task_queue=self.task_queue,
                        paused=False,  # checked for this page in select_page
                    )
                except UnknownContactError:
                    selection.count("vanished")
                    return
            if result.started:
                selection.count("enrolled")
            elif result.refused == "reentry":
                selection.count("skipped_reentry")
            elif result.refused == "already_running":
                selection.count("already_running")
            elif result.refused == "paused":
                selection.count("refused_paused")
            if activity.in_activity():
                activity.heartbeat(request.after)

        try:
            # A failed start stops the page (its other starts are cancelled): the activity is
            # retried, and the retry skips whoever this attempt did enrol.
            async with asyncio.TaskGroup() as group:
                for contact_id in selection.to_start:
                    group.create_task(enrol(contact_id))
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return PageResult(
            **selection.result,
            next_after=selection.next_after,
            last_id=selection.last_id,
            journey_paused=selection.journey_paused,
            error_samples=selection.error_samples,
        )

    def all(self) -> list[Any]:
        """Every activity, for the worker's registration list."""
        return [self.enrol_page]
