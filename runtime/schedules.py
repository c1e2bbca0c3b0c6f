"""Segment journeys as Temporal Schedules, kept in step with `journeys/`.

A journey with `segment` + `schedule: CRON` is the schedule `segment:<journey>` whose action
starts `SegmentTickWorkflow` with the journey's compiled plan (cron in UTC). A journey with
`segment` + `at: ISO` is a one-time schedule: the same action on a calendar spec matching that
second of that year, with one remaining action, so Temporal fires it once and never again.
We chose a schedule over a workflow started with a start delay because both kinds then live in
one place (listed, described, updated, paused and deleted alike, visible in the Web UI), an
edit before the instant is an update in place, and Temporal's catch-up window covers a server
that was down at the instant. An `at` already in the past when its schedule would be created
is not scheduled (reported as skipped); once it has fired, editing the journey updates the
plan but does not re-arm it unless `at` itself changed.

A journey with a date trigger (`date: contact.birthday`), or a segment schedule with
`local_time: true`, is the same kind of schedule ticking hourly (`LOCAL_TICK_CRON`, UTC): each
tick covers the hour from its nominal time and starts, with a start delay to the exact moment,
the contacts whose occurrence (or whose local reading of the cron) falls in that hour; see
docs/journeys.md "Date triggers" and activities/segment_activities.py.

Ticks skip rather than overlap (`ScheduleOverlapPolicy.SKIP`), except the hourly ones, which
buffer (each covers only its own hour); missed ticks are caught up to `CATCHUP_WINDOW` after the
server comes back. The schedule's memo marks it as ours and names
the task queue it serves (several deployments may share a namespace: each syncs only its own);
the action's memo carries the journey version, which is how `sync_schedules` knows whether a
schedule is current.

`sync_schedules` creates the missing schedules, updates those whose version (or task queue)
changed, and deletes those of journeys removed from `journeys/` or paused (YAML `status: paused`
or `rapport pause`). Schedules of journeys in `keep` (files that exist but do not compile now)
are left alone rather than deleted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from workflows.model import DateTrigger, SegmentAtTrigger, SegmentScheduleTrigger
from workflows.plan import JourneyPlan
from workflows.segment_workflow import (
    LOCAL_TICK_CRON,
    SegmentTickInput,
    SegmentTickWorkflow,
    TickProgress,
    tick_workflow_id,
)

SCHEDULE_PREFIX = "segment:"
MANAGED_BY = "rapport"
CATCHUP_WINDOW = timedelta(days=1)

Kind = Literal["schedule", "at", "date"]
Action = Literal["created", "updated", "deleted", "unchanged", "skipped"]


def schedule_id(journey_id: str) -> str:
    return f"{SCHEDULE_PREFIX}{journey_id}"


def journey_of(schedule: str) -> str | None:
    return schedule[len(SCHEDULE_PREFIX) :] if schedule.startswith(SCHEDULE_PREFIX) else None


def segment_kind(plan: JourneyPlan) -> Kind | None:
    trigger = plan.journey.trigger
    if isinstance(trigger, SegmentScheduleTrigger):
        return "schedule"
    if isinstance(trigger, SegmentAtTrigger):
        return "at"
    if isinstance(trigger, DateTrigger):
        return "date"
    return None


def is_hourly(plan: JourneyPlan) -> bool:
    """A date trigger or a `local_time` schedule: an hourly tick, each covering its hour."""
    trigger = plan.journey.trigger
    return isinstance(trigger, DateTrigger) or (
        isinstance(trigger, SegmentScheduleTrigger) and trigger.local_time
    )


def _at(
    plan: JourneyPlan, *, now: datetime | None = None, deployed_at: str | None = None
) -> datetime | None:
    """The broadcast instant of an `at` journey (None for the others). A relative `at` (`10m`)
    is resolved once, when the schedule is created: the deployed instant stays after that."""
    trigger = plan.journey.trigger
    if not isinstance(trigger, SegmentAtTrigger):
        return None
    if isinstance(trigger.at, timedelta):
        if deployed_at is not None:
            return datetime.fromisoformat(deployed_at)
        return (now or datetime.now(UTC)).replace(microsecond=0) + trigger.at
    return trigger.at.astimezone(UTC)


def _one(value: int) -> tuple[ScheduleRange, ...]:
    return (ScheduleRange(value),)


def schedule_spec(plan: JourneyPlan, at: datetime | None = None) -> ScheduleSpec:
    """The schedule's spec; `at`, the broadcast instant of an `at` journey (resolved)."""
    trigger = plan.journey.trigger
    if is_hourly(plan):
        return ScheduleSpec(cron_expressions=[LOCAL_TICK_CRON], time_zone_name="UTC")
    if isinstance(trigger, SegmentScheduleTrigger):
        return ScheduleSpec(cron_expressions=[trigger.schedule], time_zone_name="UTC")
    at = at or _at(plan)
    if at is None:
        raise ValueError(f"journey {plan.journey_id!r} has no segment trigger")
    return ScheduleSpec(
        calendars=[
            ScheduleCalendarSpec(
                second=_one(at.second),
                minute=_one(at.minute),
                hour=_one(at.hour),
                day_of_month=_one(at.day),
                month=_one(at.month),
                year=_one(at.year),
                comment=f"once, at {at.isoformat()}",
            )
        ],
        time_zone_name="UTC",
    )


def fresh_state(plan: JourneyPlan) -> ScheduleState:
    note = f"rapport: {plan.journey.name} (version {plan.version})"
    if segment_kind(plan) == "at":
        return ScheduleState(note=note, limited_actions=True, remaining_actions=1)
    return ScheduleState(note=note)


def build_schedule(
    plan: JourneyPlan,
    task_queue: str,
    state: ScheduleState | None = None,
    at: datetime | None = None,
) -> Schedule:
    """The schedule for a segment journey: its action starts a tick with this plan; `at` is
    the broadcast instant of an `at` journey, resolved (`_at`)."""
    at = at or _at(plan)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            SegmentTickWorkflow.run,
            # By reference: the plan is in the store (saved before the schedules are synced).
            SegmentTickInput(journey=plan.journey_id, version=plan.version),
            id=tick_workflow_id(plan.journey_id),
            task_queue=task_queue,
            memo={
                "journey": plan.journey_id,
                "version": plan.version,
                "at": at.isoformat() if at else None,
            },
            static_summary=f"{plan.journey.name}: segment tick (version {plan.version})",
        ),
        spec=schedule_spec(plan, at),
        policy=SchedulePolicy(
            # An hourly tick covers only its hour: one skipped would miss that hour's moments.
            overlap=ScheduleOverlapPolicy.BUFFER_ALL
            if is_hourly(plan)
            else ScheduleOverlapPolicy.SKIP,
            catchup_window=CATCHUP_WINDOW,
        ),
        state=state or fresh_state(plan),
    )


@dataclass(frozen=True)
class DeployedSchedule:
    """What Temporal has for a journey's schedule."""

    journey: str
    schedule_id: str
    version: str | None
    task_queue: str | None
    at: str | None
    paused: bool
    remaining_actions: int
    limited_actions: bool
    actions_taken: int
    next_action_times: list[datetime]


def _memo_value(client: Client, memo: Mapping[str, Payload] | None, key: str) -> Any:
    if not memo or key not in memo:
        return None
    return client.data_converter.payload_converter.from_payloads([memo[key]])[0]


def _deployed(client: Client, description: ScheduleDescription) -> DeployedSchedule:
    action = description.schedule.action
    memo: Any = getattr(action, "memo", None)
    state = description.schedule.state
    return DeployedSchedule(
        journey=journey_of(description.id) or description.id,
        schedule_id=description.id,
        version=_memo_value(client, memo, "version"),
        task_queue=getattr(action, "task_queue", None),
        at=_memo_value(client, memo, "at"),
        paused=state.paused,
        remaining_actions=state.remaining_actions,
        limited_actions=state.limited_actions,
        actions_taken=description.info.num_actions,
        next_action_times=list(description.info.next_action_times),
    )


async def describe_schedule(client: Client, journey_id: str) -> DeployedSchedule | None:
    """The journey's schedule as Temporal has it now; None when there is none."""
    try:
        description = await client.get_schedule_handle(schedule_id(journey_id)).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return _deployed(client, description)


async def listed_journeys(client: Client, task_queue: str) -> set[str]:
    """Journeys with a schedule of ours serving `task_queue`. Temporal's list is eventually
    consistent: a schedule created or deleted a moment ago may be missing or still there."""
    found: set[str] = set()
    async for entry in await client.list_schedules():
        journey = journey_of(entry.id)
        if journey is None:
            continue
        memo = await entry.memo()
        if memo.get("managed_by") == MANAGED_BY and memo.get("task_queue") == task_queue:
            found.add(journey)
    return found


async def deployed_schedules(
    client: Client, task_queue: str, journeys: Collection[str] = ()
) -> dict[str, DeployedSchedule]:
    """Our schedules for `task_queue`: those listed plus those of `journeys` (described, so a
    schedule the list does not show yet still counts)."""
    found: dict[str, DeployedSchedule] = {}
    for journey in sorted(await listed_journeys(client, task_queue) | set(journeys)):
        deployed = await describe_schedule(client, journey)
        if deployed is not None and deployed.task_queue in (task_queue, None):
            found[journey] = deployed
    return found


# --- sync ---------------------------------------------------------------------------------------


class ScheduleChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    journey: str
    action: Action
    schedule_id: str
    version: str | None = None
    previous_version: str | None = None
    reason: str | None = None


@dataclass
class SyncReport:
    changes: list[ScheduleChange] = field(default_factory=list)

    def journeys(self, action: Action) -> list[str]:
        return sorted(c.journey for c in self.changes if c.action == action)

    @property
    def created(self) -> list[str]:
        return self.journeys("created")

    @property
    def updated(self) -> list[str]:
        return self.journeys("updated")

    @property
    def deleted(self) -> list[str]:
        return self.journeys("deleted")

    @property
    def unchanged(self) -> list[str]:
        return self.journeys("unchanged")

    @property
    def skipped(self) -> list[str]:
        return self.journeys("skipped")

    def change(self, journey: str) -> ScheduleChange | None:
        return next((c for c in self.changes if c.journey == journey), None)

    def as_json(self) -> list[dict[str, Any]]:
        """The changes by journey (a list, not an object: `rapport sync --json`'s `schedules`)."""
        return [c.model_dump(mode="json") for c in sorted(self.changes, key=lambda c: c.journey)]


async def sync_schedules(
    client: Client,
    plans: Mapping[str, JourneyPlan],
    task_queue: str,
    *,
    paused: Collection[str] = (),
    keep: Collection[str] = (),
    known: Collection[str] = (),
    now: datetime | None = None,
) -> SyncReport:
    """Make Temporal's schedules match `plans` (see the module docstring). `paused`: journeys
    paused by `rapport pause`; `keep`: journeys whose schedule must not be deleted; `known`:
    other journeys that may have a schedule (e.g. from the store's runs), looked up directly
    since Temporal's schedule list lags behind."""
    moment = now or datetime.now(UTC)
    report = SyncReport()
    wanted = {
        journey: plan
        for journey, plan in plans.items()
        if segment_kind(plan) is not None
        and plan.journey.status != "paused"
        and journey not in paused
    }
    for journey in sorted(plans):
        plan = plans[journey]
        if segment_kind(plan) is None:
            continue
        if journey in wanted:
            report.changes.append(await ensure_schedule(client, plan, task_queue, now=moment))
    # Everything else of ours goes: removed journeys, paused ones, ones no longer segments.
    candidates = (await listed_journeys(client, task_queue)) | set(known) | set(plans)
    for journey in sorted(candidates - set(wanted) - set(keep)):
        deployed = await describe_schedule(client, journey)
        if deployed is None or deployed.task_queue != task_queue:
            continue
        plan_now = plans.get(journey)
        if plan_now is None:
            reason = "journey removed"
        elif segment_kind(plan_now) is None:
            reason = "no longer a segment journey"
        else:
            reason = "journey paused"
        await delete_schedule(client, journey)
        report.changes.append(
            ScheduleChange(
                journey=journey,
                action="deleted",
                schedule_id=schedule_id(journey),
                previous_version=deployed.version,
                reason=reason,
            )
        )
    for journey in sorted(set(plans) - set(wanted)):
        plan = plans[journey]
        if segment_kind(plan) is not None and report.change(journey) is None:
            report.changes.append(
                ScheduleChange(
                    journey=journey,
                    action="skipped",
                    schedule_id=schedule_id(journey),
                    version=plan.version,
                    reason="journey paused",
                )
            )
    return report


async def ensure_schedule(
    client: Client, plan: JourneyPlan, task_queue: str, *, now: datetime | None = None
) -> ScheduleChange:
    """Create the journey's schedule, or update it when its version or task queue changed."""
    journey = plan.journey_id
    sid = schedule_id(journey)

    def change(
        action: Action, previous: str | None = None, reason: str | None = None
    ) -> ScheduleChange:
        return ScheduleChange(
            journey=journey,
            action=action,
            schedule_id=sid,
            version=plan.version,
            previous_version=previous,
            reason=reason,
        )

    deployed = await describe_schedule(client, journey)
    if deployed is None:
        at = _at(plan, now=now)
        if at is not None and at <= (now or datetime.now(UTC)):
            return change("skipped", reason=f"at {at.isoformat()} is in the past")
        try:
            await client.create_schedule(
                sid,
                build_schedule(plan, task_queue, at=at),
                memo={"managed_by": MANAGED_BY, "task_queue": task_queue},
            )
        except ScheduleAlreadyRunningError:  # another process created it a moment ago
            deployed = await describe_schedule(client, journey)
        else:
            return change("created")
    assert deployed is not None
    if deployed.version == plan.version and deployed.task_queue == task_queue:
        return change("unchanged", deployed.version)
    new_at = _at(plan, now=now, deployed_at=deployed.at)

    def updater(update: ScheduleUpdateInput) -> ScheduleUpdate:
        current = update.description.schedule.state
        same_kind = (deployed.at is None) == (new_at is None)
        same_at = new_at is None or deployed.at == new_at.isoformat()
        # Keep the state (paused by hand, a one-time schedule that already fired) unless the
        # instant or the kind changed; a new `at` is armed again.
        state = current if same_kind and same_at else fresh_state(plan)
        state = ScheduleState(
            note=fresh_state(plan).note,
            paused=state.paused,
            limited_actions=state.limited_actions,
            remaining_actions=state.remaining_actions,
        )
        return ScheduleUpdate(schedule=build_schedule(plan, task_queue, state, new_at))

    await client.get_schedule_handle(sid).update(updater)
    return change("updated", deployed.version)


async def delete_schedule(client: Client, journey_id: str) -> bool:
    """Delete the journey's schedule; False when there was none. A tick already running goes
    on to its end."""
    try:
        await client.get_schedule_handle(schedule_id(journey_id)).delete()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def latest_tick(client: Client, journey_id: str) -> TickProgress | None:
    """The progress of the journey's running tick, else of its latest finished one (None: no
    schedule, or no tick yet). A running tick answers the `progress` query (a worker must be
    up); a finished one's result is read from its history."""
    try:
        description = await client.get_schedule_handle(schedule_id(journey_id)).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    info = description.info
    workflow_id: str | None = None
    if info.running_actions:
        workflow_id = getattr(info.running_actions[-1], "workflow_id", None)
    elif info.recent_actions:
        workflow_id = getattr(info.recent_actions[-1].action, "workflow_id", None)
    if workflow_id is None:
        return None
    # Typed by hand: mypy's inference of get_workflow_handle_for depends on the order it
    # checks modules in (a cold cache failed where a warm one passed).
    handle: WorkflowHandle[Any, TickProgress] = client.get_workflow_handle(
        workflow_id, result_type=TickProgress
    )
    status = (await handle.describe()).status
    if status == WorkflowExecutionStatus.RUNNING:
        progress: TickProgress | None = await handle.query(SegmentTickWorkflow.progress)
        return progress
    if status == WorkflowExecutionStatus.COMPLETED:
        return await handle.result()
    return None
