"""Journey lifecycle: what changed since the last deploy (`rapport sync`), pausing and resuming.

**Versions.** A journey's deployed version is the one its schedule carries (segment journeys),
else the version of its latest run in the store; the compiled journey in `journeys/` is the new
one. A journey is `added` when neither exists, `changed` when they differ, `removed` when it has
a schedule or runs in flight but no file in `journeys/` any more. Runs keep the version they
entered with, so for each journey the report counts the runs in flight per old version — they
finish on the old version while new entries take the new one.

**Pausing.** `pause_journey` sets the store's flag (so `start_run` refuses new entries and ticks
stop), deletes the journey's schedule, and signals `pause` to every running run of the journey
in the store: each holds before its next send until `resume_journey` clears the flag, signals
`resume` and re-creates the schedule. Runs whose start raced with the flag are recorded a moment
after they start, so the runs are swept twice, `SECOND_SWEEP_AFTER` apart. `status: paused` in
YAML refuses new entries the same way (and removes the schedule at the next sync); the runs in
flight keep the version they entered with, so holding them is what `rapport pause` is for.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_serializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.plans import save_plans
from runtime.schedules import (
    DeployedSchedule,
    ScheduleChange,
    SyncReport,
    delete_schedule,
    deployed_schedules,
    ensure_schedule,
    schedule_id,
    segment_kind,
    sync_schedules,
)
from runtime.starter import TemporalUnavailableError, is_unavailable
from store import Store
from store.models import Run
from workflows.compiler import journey_files
from workflows.plan import JourneyPlan

log = logging.getLogger("rapport.lifecycle")

SIGNAL_CONCURRENCY = 32
SECOND_SWEEP_AFTER = 1.0

Change = Literal["added", "changed", "unchanged", "removed"]


@dataclass(frozen=True)
class VersionStats:
    """The store's runs of one journey, by version."""

    running: dict[str, int] = field(default_factory=dict)
    latest_version: str | None = None
    latest_entered_at: datetime | None = None


def run_versions(store: Store) -> dict[str, VersionStats]:
    """Per journey: running runs per version and the version of the latest entry (one query)."""
    stmt = select(
        Run.journey, Run.version, Run.status, func.count(), func.max(Run.entered_at)
    ).group_by(Run.journey, Run.version, Run.status)
    running: dict[str, dict[str, int]] = defaultdict(dict)
    latest: dict[str, tuple[datetime, str]] = {}
    with Session(store.engine) as session:
        for journey, version, status, count, entered in session.execute(stmt):
            if status == "running":
                running[journey][version] = int(count)
            if entered is not None and (journey not in latest or entered > latest[journey][0]):
                latest[journey] = (entered, version)
    return {
        journey: VersionStats(
            running=running.get(journey, {}),
            latest_version=latest[journey][1] if journey in latest else None,
            latest_entered_at=latest[journey][0] if journey in latest else None,
        )
        for journey in set(running) | set(latest)
    }


class JourneyChange(BaseModel):
    """A journey against what is deployed; its JSON gives `in_flight` as one number (the
    running runs of every version) and `in_flight_old` as `in_flight_old_versions`."""

    model_config = ConfigDict(serialize_by_alias=True)

    journey: str
    change: Change
    version: str | None
    previous_version: str | None
    trigger: str | None
    paused: bool
    in_flight: dict[str, int] = Field(default_factory=dict)  # running runs by version
    in_flight_old: dict[str, int] = Field(
        default_factory=dict, serialization_alias="in_flight_old_versions"
    )
    schedule: ScheduleChange | None = None

    @field_serializer("in_flight")
    def _in_flight_total(self, in_flight: dict[str, int]) -> int:
        return sum(in_flight.values())


@dataclass
class LifecycleReport:
    journeys: list[JourneyChange]
    schedules: SyncReport | None = None
    invalid: list[str] = field(default_factory=list)
    traits_schedule_created: bool = False

    def of(self, change: Change) -> list[str]:
        return [j.journey for j in self.journeys if j.change == change]

    def get(self, journey: str) -> JourneyChange | None:
        return next((j for j in self.journeys if j.journey == journey), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "added": self.of("added"),
            "changed": self.of("changed"),
            "removed": self.of("removed"),
            "unchanged": self.of("unchanged"),
            "invalid": self.invalid,
            "journeys": [j.model_dump(mode="json") for j in self.journeys],
            "schedules": self.schedules.as_json() if self.schedules else None,
        }


def _trigger_kind(plan: JourneyPlan) -> str:
    return segment_kind(plan) or type(plan.journey.trigger).__name__.removesuffix("Trigger").lower()


def compare(
    plans: Mapping[str, JourneyPlan],
    versions: Mapping[str, VersionStats],
    schedules: Mapping[str, DeployedSchedule],
    paused: Collection[str],
    invalid: Collection[str] = (),
) -> list[JourneyChange]:
    """Each journey's change against what is deployed (see the module docstring)."""
    changes: list[JourneyChange] = []
    known = set(plans) | {j for j, s in versions.items() if s.running} | set(schedules)
    for journey in sorted(known):
        stats = versions.get(journey, VersionStats())
        schedule = schedules.get(journey)
        previous = schedule.version if schedule and schedule.version else stats.latest_version
        plan = plans.get(journey)
        if plan is None:
            if journey in invalid:
                continue  # its file is there but does not compile: not removed
            changes.append(
                JourneyChange(
                    journey=journey,
                    change="removed",
                    version=None,
                    previous_version=previous,
                    trigger=None,
                    paused=journey in paused,
                    in_flight=dict(stats.running),
                    in_flight_old=dict(stats.running),
                )
            )
            continue
        change: Change = (
            "added" if previous is None else "unchanged" if previous == plan.version else "changed"
        )
        changes.append(
            JourneyChange(
                journey=journey,
                change=change,
                version=plan.version,
                previous_version=previous,
                trigger=_trigger_kind(plan),
                paused=journey in paused or plan.journey.status == "paused",
                in_flight=dict(stats.running),
                in_flight_old={v: n for v, n in stats.running.items() if v != plan.version},
            )
        )
    return changes


async def sync_project(
    client: Client,
    store: Store,
    plans: Mapping[str, JourneyPlan],
    task_queue: str,
    *,
    invalid: Collection[str] = (),
    apply: bool = True,
) -> LifecycleReport:
    """Report what changed against the store's runs and Temporal's schedules, then (unless
    `apply` is false) sync the schedules. Journeys in `invalid` (files that do not compile) are
    neither reported as removed nor have their schedules deleted."""
    versions = await asyncio.to_thread(run_versions, store)
    paused = await asyncio.to_thread(store.paused_journeys)
    schedules = await deployed_schedules(client, task_queue, set(plans) | set(versions))
    report = LifecycleReport(
        compare(plans, versions, schedules, paused, invalid), invalid=sorted(invalid)
    )
    if apply:
        # The plans of the versions that runs will enter with, where their activities read them.
        await asyncio.to_thread(save_plans, store, plans.values())
        report.schedules = await sync_schedules(
            client,
            plans,
            task_queue,
            paused=paused,
            keep=invalid,
            known=set(schedules) | set(versions),
        )
        for journey in report.journeys:
            journey.schedule = report.schedules.change(journey.journey)
        # Imported here: the traits schedule's module builds on the router, as this one does.
        from runtime.trait_schedule import ensure_traits_schedule

        report.traits_schedule_created = await ensure_traits_schedule(client, task_queue)
    return report


# --- pause and resume ---------------------------------------------------------------------------


class PauseReport(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True)

    journey: str
    paused: bool
    signalled: int = Field(default=0, serialization_alias="runs_signalled")
    already_ended: int = Field(default=0, serialization_alias="runs_already_ended")
    schedule: str | None = None  # "deleted", "created", … or None (not a segment journey)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def schedule_id(self) -> str | None:
        return schedule_id(self.journey) if self.schedule else None


def running_workflow_ids(store: Store, journey: str) -> list[str]:
    stmt = (
        select(Run.workflow_id)
        .where(Run.journey == journey, Run.status == "running")
        .distinct()
        .order_by(Run.workflow_id)
    )
    with Session(store.engine) as session:
        return list(session.scalars(stmt))


def has_runs(store: Store, journey: str) -> bool:
    with Session(store.engine) as session:
        return session.scalar(select(Run.id).where(Run.journey == journey).limit(1)) is not None


async def signal_runs(
    client: Client,
    store: Store,
    journey: str,
    signal: Literal["pause", "resume"],
    report: PauseReport,
    *,
    skip: set[str] | None = None,
) -> set[str]:
    """Signal every running run of the journey in the store (those not in `skip`); returns the
    workflow ids swept. Runs that ended meanwhile are counted, not errors."""
    ids = await asyncio.to_thread(running_workflow_ids, store, journey)
    todo = [w for w in ids if not skip or w not in skip]
    gate = asyncio.Semaphore(SIGNAL_CONCURRENCY)

    async def one(workflow_id: str) -> None:
        async with gate:
            try:
                await client.get_workflow_handle(workflow_id).signal(signal)
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    report.already_ended += 1
                    return
                if is_unavailable(error):
                    raise TemporalUnavailableError(
                        client.service_client.config.target_host, error.message
                    ) from None
                raise
            report.signalled += 1

    await asyncio.gather(*(one(w) for w in todo))
    return set(ids)


async def pause_journey(
    client: Client,
    store: Store,
    journey: str,
    *,
    second_sweep_after: float = SECOND_SWEEP_AFTER,
) -> PauseReport:
    """Pause: no new entries (store flag, schedule deleted); running runs hold before their
    next send."""
    await asyncio.to_thread(store.set_journey_paused, journey, True)
    report = PauseReport(journey=journey, paused=True)
    if await delete_schedule(client, journey):
        report.schedule = "deleted"
    swept = await signal_runs(client, store, journey, "pause", report)
    if second_sweep_after > 0:
        await asyncio.sleep(second_sweep_after)
        await signal_runs(client, store, journey, "pause", report, skip=swept)
    return report


async def resume_journey(
    client: Client,
    store: Store,
    journey: str,
    plan: JourneyPlan | None,
    task_queue: str,
) -> PauseReport:
    """Resume: new entries again (the schedule re-created for a segment journey that YAML does
    not pause), and held runs go on with their next send."""
    await asyncio.to_thread(store.set_journey_paused, journey, False)
    report = PauseReport(
        journey=journey, paused=plan is not None and plan.journey.status == "paused"
    )
    if plan is not None and segment_kind(plan) is not None and not report.paused:
        report.schedule = (await ensure_schedule(client, plan, task_queue)).action
    await signal_runs(client, store, journey, "resume", report)
    return report


def invalid_journeys(journeys_dir: Path, plans: Mapping[str, JourneyPlan]) -> set[str]:
    """Journeys whose file is in `journeys_dir` but did not compile."""
    return {path.stem for path in journey_files([journeys_dir])} - set(plans)


async def sync_at_start(
    client: Client,
    store: Store,
    plans: Mapping[str, JourneyPlan],
    task_queue: str,
    journeys_dir: Path,
) -> SyncReport | None:
    """What a starting stack does: sync the schedules to `journeys/`, logging what changed.
    A failure is logged, not raised: the stack serves events either way."""
    try:
        report = await sync_project(
            client,
            store,
            plans,
            task_queue,
            invalid=invalid_journeys(journeys_dir, plans),
        )
    except Exception as error:  # the stack must come up; `rapport sync` retries by hand
        log.warning("could not sync segment schedules (run `rapport sync`): %s", error)
        return None
    assert report.schedules is not None
    for change in report.schedules.changes:
        if change.action != "unchanged":
            log.info(
                "schedule %s %s%s",
                change.schedule_id,
                change.action,
                f" ({change.reason})" if change.reason else "",
            )
    return report.schedules
