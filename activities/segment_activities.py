"""The segment tick's activity: enrol one page of contacts (see workflows/segment_workflow.py).

`enrol_page` reads at most `page_size` contacts after a cursor (keyset pagination on the
primary key), the answers to the journey's event questions (`count_events`/`last_event`) for
the whole page — one indexed query per question, the same loader a run's `load_contact` uses —
and their earlier runs of the journey, again in one query. It evaluates `segment` and `audience`
with the tick's time as `now()`, drops the contacts the journey's `reentry` keeps out and those
this tick already enrolled, and starts the rest through `runtime.starter.start_run` (the one
place runs start), at most `concurrency` at a time. Memory is one page, whatever the table's size.

Running a page again (a retried activity, a restarted tick) is harmless: `start_run` refuses a
contact already inside the journey (workflow id conflict) or kept out by `reentry`, and a run
started by this tick carries `segment_tick` in its data, which the next attempt sees.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from temporalio import activity
from temporalio.client import Client

from activities.contact_context import contact_snapshots
from activities.heartbeat import heartbeating
from activities.plans import PlanCache
from activities.policy import local_zone
from runtime.starter import StartResult, UnknownContactError, reentry_refusal, start_run
from store import Store
from store.records import ContactRecord, RunRecord
from workflows.contracts import ContactSnapshot
from workflows.dates import (
    candidate_month_days,
    date_value,
    local_fire_between,
    occurrences_between,
)
from workflows.durations import parse_clock
from workflows.entry import Refusal, entry_refusal
from workflows.ids import workflow_id_for
from workflows.model import DateTrigger, SegmentAtTrigger, SegmentScheduleTrigger
from workflows.plan import JourneyPlan
from workflows.segment_workflow import (
    ENROL_PAGE,
    LOCAL_TICK_PERIOD,
    EnrolPageInput,
    PageResult,
)

TICK_DATA_KEY = "segment_tick"
OCCURRENCE_DATA_KEY = "occurrence"  # a date trigger's run: the anniversary it celebrates
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
        key: str | None = ...,
        start_delay: timedelta | None = ...,
        checked: bool = ...,
    ) -> Awaitable[StartResult]: ...


# --- bulk reads, one query each per page ----------------------------------------------------


def earlier_runs(
    store: Store, journey: str, contact_ids: list[str], *, keyed: bool = False
) -> dict[str, list[RunRecord]]:
    """The contacts' runs of `journey`: the unkeyed ones (a segment journey has no trigger
    key), or all of them (`keyed`: a date trigger's runs are keyed by occurrence)."""
    return {
        contact_id: [
            run for run in runs if keyed or run.workflow_id == workflow_id_for(journey, contact_id)
        ]
        for contact_id, runs in store.runs_of_contacts(journey, contact_ids).items()
    }


def is_paused(store: Store, plan: JourneyPlan) -> bool:
    return plan.journey.status == "paused" or plan.journey_id in store.paused_journeys()


# --- choosing a page's entrants ---------------------------------------------------------------


@dataclass
class Selection:
    """One page, evaluated: who to start and what became of the others."""

    result: dict[str, int] = field(default_factory=dict)
    to_start: list[str] = field(default_factory=list)
    # A date trigger's or local-time schedule's entrants: the occurrence (run key, moment).
    moments: dict[str, Moment] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    next_after: str | None = None
    last_id: str | None = None
    journey_paused: bool = False

    def count(self, name: str, by: int = 1) -> None:
        self.result[name] = self.result.get(name, 0) + by


def evaluated_page(
    store: Store, plan: JourneyPlan, page: list[ContactRecord], at: datetime
) -> list[tuple[ContactRecord, ContactSnapshot, Refusal | None]]:
    """Each contact of a page with its snapshot and what keeps it out of the segment at `at`
    (None: it is in). The plan's event questions are asked for the whole page, one query per
    question, not per contact."""
    snapshots = contact_snapshots(store, page, plan.event_questions, at)
    return [
        (
            contact,
            snapshots[contact.id],
            entry_refusal(
                plan.journey, snapshots[contact.id].context(at, journey=plan.journey.data)
            ),
        )
        for contact in page
    ]


def page_verdicts(
    store: Store, plan: JourneyPlan, page: list[ContactRecord], at: datetime
) -> list[tuple[ContactRecord, Refusal | None]]:
    """Each contact of a page with what keeps it out of the segment at `at` (None: it is in):
    the tick's evaluation, also `rapport segment`'s."""
    return [(contact, refusal) for contact, _, refusal in evaluated_page(store, plan, page, at)]


@dataclass(frozen=True)
class Moment:
    """When an entrant of an hourly tick enters, and the key of its run (a date's occurrence)."""

    at: datetime
    key: str | None = None


def _local_tick_zones(store: Store, plan: JourneyPlan, start: datetime) -> list[str | None]:
    """The contacts' zones (None: no zone) whose clock reads the schedule in this hour."""
    trigger = plan.journey.trigger
    assert isinstance(trigger, SegmentScheduleTrigger)
    fallback = plan.journey.settings.timezone
    end = start + LOCAL_TICK_PERIOD
    return [
        zone
        for zone in store.contact_timezones()
        if local_fire_between(trigger.schedule, local_zone(zone, fallback), start, end)
    ]


def _page(store: Store, plan: JourneyPlan, request: EnrolPageInput) -> list[ContactRecord]:
    """The page's contacts: every contact for a segment, only the candidates (by SQL) for a
    date trigger or a local-time schedule."""
    trigger = plan.journey.trigger
    if isinstance(trigger, DateTrigger):
        days = candidate_month_days(
            request.tick_at, request.tick_at + LOCAL_TICK_PERIOD, trigger.offset_days
        )
        return store.contacts_after(
            request.after, request.page_size, month_day=(trigger.attribute, days)
        )
    if isinstance(trigger, SegmentScheduleTrigger) and trigger.local_time:
        zones = _local_tick_zones(store, plan, request.tick_at)
        return store.contacts_after(request.after, request.page_size, timezones=zones)
    return store.contacts_after(request.after, request.page_size)


def entry_moment(
    plan: JourneyPlan,
    contact: ContactRecord,
    snapshot: ContactSnapshot,
    tick_at: datetime,
    end: datetime | None = None,
) -> Moment | None:
    """When in [tick_at, end) the contact enters, else None; `end` defaults to the end of an
    hourly tick (`rapport simulate` asks about its whole span). A plain segment schedule
    enters at the tick (`Moment(tick_at)`)."""
    trigger = plan.journey.trigger
    zone = local_zone(contact.timezone, plan.journey.settings.timezone)
    end = end or tick_at + LOCAL_TICK_PERIOD
    if isinstance(trigger, DateTrigger):
        base = date_value(snapshot.contact.get(trigger.attribute), zone)
        if base is None:
            return None
        found = occurrences_between(
            base,
            every=trigger.every,
            offset_days=trigger.offset_days,
            at=parse_clock(trigger.at),
            zone=zone,
            start=tick_at,
            end=end,
        )
        return Moment(found[0].at, found[0].key) if found else None
    if isinstance(trigger, SegmentScheduleTrigger) and trigger.local_time:
        fire = local_fire_between(trigger.schedule, zone, tick_at, end)
        return Moment(fire) if fire is not None else None
    return Moment(tick_at)


def select_page(
    store: Store, plan: JourneyPlan, request: EnrolPageInput, now: datetime
) -> Selection:
    """Read one page and decide, for each contact, whether the tick starts a run for it."""
    journey = plan.journey
    selection = Selection()
    if is_paused(store, plan):
        selection.journey_paused = True
        selection.next_after = request.after
        return selection
    page = _page(store, plan, request)
    selection.count("scanned", len(page))
    if len(page) == request.page_size:
        selection.next_after = page[-1].id
    if not page:
        return selection
    selection.last_id = page[-1].id
    trigger = journey.trigger
    if not isinstance(trigger, DateTrigger | SegmentScheduleTrigger | SegmentAtTrigger):
        raise ValueError(f"journey {plan.journey_id!r} has no segment or date trigger")
    ids = [contact.id for contact in page]
    runs = earlier_runs(store, plan.journey_id, ids, keyed=isinstance(trigger, DateTrigger))
    for contact, snapshot, refusal in evaluated_page(store, plan, page, request.tick_at):
        moment = entry_moment(plan, contact, snapshot, request.tick_at)
        if moment is None:
            continue
        if refusal is not None and refusal.error is not None:
            selection.count("errors")
            if len(selection.error_samples) < ERROR_SAMPLES_PER_PAGE:
                selection.error_samples.append(f"{contact.id}: {refusal.error}")
            continue
        if refusal is not None:
            continue
        selection.count("matched")
        earlier = runs.get(contact.id, [])
        if moment.key is not None:
            # A date: one run per occurrence, whatever `reentry` says and however often a
            # tick covering it runs (the run's id carries the occurrence).
            this_occurrence = workflow_id_for(plan.journey_id, contact.id, moment.key)
            earlier = [run for run in earlier if run.workflow_id == this_occurrence]
            if earlier:
                selection.count("already_enrolled")
                continue
        elif any(run.data.get(TICK_DATA_KEY) == request.tick_id for run in earlier):
            selection.count("already_enrolled")
            continue
        elif reentry_refusal(journey, earlier, now) is not None:
            selection.count("skipped_reentry")
            continue
        selection.to_start.append(contact.id)
        if moment.at != request.tick_at or moment.key is not None:
            selection.moments[contact.id] = moment
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
        self.plans = PlanCache(store)
        self.client = client
        self.task_queue = task_queue
        self._start: Starter = start or start_run
        self._clock = clock or (lambda: datetime.now(UTC))

    @activity.defn(name=ENROL_PAGE)
    async def enrol_page(self, request: EnrolPageInput) -> PageResult:
        # Beats every third of the heartbeat timeout from start to end, whatever part of the
        # page is running (the read in a thread, or starts waiting on Temporal).
        return await heartbeating(self._enrol_page(request), request.after)

    def _plan(self, request: EnrolPageInput) -> JourneyPlan:
        """The page's plan: by reference through the cache, or inline (older schedules)."""
        if request.plan is not None:
            return request.plan
        return self.plans.plan(request.journey, request.version)

    async def _enrol_page(self, request: EnrolPageInput) -> PageResult:
        plan = await asyncio.to_thread(self._plan, request)
        selection = await asyncio.to_thread(select_page, self.store, plan, request, self._clock())
        _beat(request.after, "read")
        gate = asyncio.Semaphore(max(1, request.concurrency))
        # Every run of the broadcast gets the same moments relative to it (the tick's time).
        data = {TICK_DATA_KEY: request.tick_id, **plan.start_data(request.tick_at)}

        async def enrol(contact_id: str) -> None:
            moment = selection.moments.get(contact_id)
            extra: dict[str, Any] = {}
            if moment is not None:
                extra = {"start_delay": moment.at - self._clock()}
                if moment.key is not None:
                    extra["key"] = moment.key
            async with gate:
                try:
                    result = await self._start(
                        self.client,
                        self.store,
                        plan,
                        contact_id,
                        data={**data, OCCURRENCE_DATA_KEY: moment.key}
                        if moment and moment.key
                        else data,
                        task_queue=self.task_queue,
                        # select_page read the page's contacts, their earlier runs and the
                        # paused flag, and applied reentry, in this attempt: not read again.
                        paused=False,
                        checked=True,
                        **extra,
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
            _beat(request.after, contact_id)

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


def _beat(*details: Any) -> None:
    """A heartbeat at a point of progress (the page read, a run started)."""
    if activity.in_activity():
        activity.heartbeat(*details)
