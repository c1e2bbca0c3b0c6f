"""Starting journey runs: the one place a run begins (the CLI, the HTTP API, the event router).

A run is one `JourneyWorkflow` with the id `journey:<journey>:<contact>[:<key>]`. Whether a contact
may enter is decided in two places that together are race-free:

- the store's run history (written by the workflow's `record_run_started` activity) answers the
  journey's `reentry` rule: `never` refuses any earlier entry, a duration refuses an entry newer
  than it, `always` refuses nothing;
- Temporal answers "is the contact inside right now": the start uses
  `id_conflict_policy=FAIL`, so a second start of the same workflow id while a run is open is
  refused by the server however many callers race; `id_reuse_policy=ALLOW_DUPLICATE` lets a
  closed id start again once the store's rule allows it.

Keyed journeys (`trigger.key`) apply both rules per key: one run per contact *and* key value.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from activities.plans import save_plan
from errors import InvalidInputError, UnavailableError
from runtime.temporal import DEFAULT_ADDRESS, connect
from settings import Settings
from store import Store
from store.records import RunRecord
from workflows.contracts import EndedRun, EventPayload, JourneyInput, JourneyResult
from workflows.ids import workflow_id_for
from workflows.journey_workflow import JourneyWorkflow
from workflows.model import Journey
from workflows.plan import JourneyPlan

Refusal = Literal["paused", "already_running", "reentry"]

# RPC failures that mean "Temporal is not there right now": retry later.
UNAVAILABLE_CODES = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED}
)


class UnknownContactError(InvalidInputError):
    """The contact is not in the store (import or identify it first)."""

    def __init__(self, contact_id: str) -> None:
        super().__init__(
            f"no contact {contact_id!r} in the store (add it with `rapport contacts import` "
            "or the identify API first)"
        )
        self.contact_id = contact_id


class TemporalUnavailableError(UnavailableError):
    """Temporal cannot be reached; the message says where we looked and what to do."""

    def __init__(self, address: str, detail: str = "") -> None:
        why = f" ({detail})" if detail else ""
        super().__init__(
            f"cannot reach Temporal at {address}{why}: start the stack with `rapport run`, "
            "or point TEMPORAL_ADDRESS at a running cluster"
        )
        self.address = address


def temporal_address(settings: Settings) -> str:
    return settings.temporal_address or DEFAULT_ADDRESS


def is_unavailable(error: BaseException) -> bool:
    return isinstance(error, RPCError) and error.status in UNAVAILABLE_CODES


async def connect_client(
    settings: Settings, *, fail_fast: bool = True, runtime: Runtime | None = None
) -> Client:
    """`runtime.temporal.connect`, with an unreachable server as a `TemporalUnavailableError`;
    `fail_fast` (the default, for the API and the CLI) gives up on a call within seconds."""
    try:
        return await connect(settings, fail_fast=fail_fast, runtime=runtime)
    except RuntimeError as error:  # the SDK's "Failed client connect: …"
        detail = "connection refused" if "refused" in str(error).lower() else "no answer"
        raise TemporalUnavailableError(temporal_address(settings), detail) from None


class StartResult(BaseModel):
    """A started run (`run_id` set) or why none was started (`refused`, `reason`);
    `model_dump(mode="json")` is what `rapport start --json` prints."""

    model_config = ConfigDict(frozen=True)

    journey: str
    version: str
    contact_id: str
    workflow_id: str
    run_id: str | None = None
    refused: Refusal | None = None
    reason: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def started(self) -> bool:
        return self.run_id is not None


def reentry_refusal(journey: Journey, runs: list[RunRecord], now: datetime) -> str | None:
    """Why the journey's `reentry` rule keeps the contact out, given its earlier runs."""
    if not runs:
        return None
    latest = max(run.entered_at for run in runs)
    after = journey.reentry_after()
    if after is None:
        return f"reentry is never and the contact entered on {latest.isoformat()}"
    if now - latest < after:
        return (
            f"reentry is {journey.reentry} and the contact last entered on "
            f"{latest.isoformat()}; it may enter again from {(latest + after).isoformat()}"
        )
    return None


async def start_run(
    client: Client,
    store: Store,
    plan: JourneyPlan,
    contact_id: str,
    *,
    data: dict[str, Any] | None = None,
    trigger: EventPayload | None = None,
    key: str | None = None,
    task_queue: str,
    now: datetime | None = None,
    paused: bool | None = None,
    start_delay: timedelta | None = None,
    checked: bool = False,
) -> StartResult:
    """Start `plan` for the contact, or say why not. Raises `UnknownContactError` when the
    contact is not in the store and `TemporalUnavailableError` when Temporal does not answer.

    A journey is paused by `status: paused` in its YAML or by `rapport pause` (the store's flag);
    `paused` says whether the flag is set when the caller already knows (a segment tick reads it
    once a page), else the store is asked. `start_delay`: the run begins that much later (a
    date trigger's or a local-time schedule's moment within its tick's hour); the workflow id
    is taken at once, so a second start in between is refused as already running.
    `checked`: the caller has just read the contact and its earlier runs of the journey and
    applied `reentry` itself (a segment tick's page reads them for the whole page at once), so
    they are not read again here; the workflow id still refuses a contact already inside."""
    workflow_id = workflow_id_for(plan.journey_id, contact_id, key)
    result = StartResult(
        journey=plan.journey_id,
        version=plan.version,
        contact_id=contact_id,
        workflow_id=workflow_id,
    )
    journey = plan.journey
    if journey.status == "paused" or paused:
        return _refused(result, "paused", f"journey {plan.journey_id!r} is paused")
    # The run carries the plan's name and version; its activities read the plan from the store
    # (written once per process). With the paused flag (unless the caller knows it) and the
    # reentry check, one thread hop.
    refusal = await asyncio.to_thread(
        _before_start,
        store,
        plan,
        contact_id,
        workflow_id,
        now,
        checked=checked,
        read_paused=paused is None,
    )
    if refusal is not None:
        return _refused(result, *refusal)
    try:
        handle = await client.start_workflow(
            JourneyWorkflow.run,
            JourneyInput(
                journey=plan.journey_id,
                version=plan.version,
                contact_id=contact_id,
                trigger=trigger,
                # Moments the journey's data sets relative to the start, then the caller's.
                data={**plan.start_data(now or datetime.now(UTC)), **(data or {})},
                key=key,
            ),
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"{journey.name} for {contact_id}",
            start_delay=start_delay if start_delay and start_delay > timedelta(0) else None,
        )
    except WorkflowAlreadyStartedError:
        return _refused(
            result, "already_running", f"{contact_id!r} is already in {plan.journey_id!r}"
        )
    except RPCError as error:
        if is_unavailable(error):
            raise TemporalUnavailableError(_address_of(client), error.message) from None
        raise
    return result.model_copy(
        update={"run_id": handle.result_run_id or handle.first_execution_run_id}
    )


def _before_start(
    store: Store,
    plan: JourneyPlan,
    contact_id: str,
    workflow_id: str,
    now: datetime | None,
    *,
    checked: bool,
    read_paused: bool,
) -> tuple[Refusal, str] | None:
    """In a worker thread: why the contact may not enter (None: it may): the journey paused by
    `rapport pause` (when `read_paused`), or `reentry` (when the caller has checked, only the
    earlier runs are read again); then the plan saved for the run."""
    with store.one_connection():
        if read_paused and plan.journey_id in store.paused_journeys():
            return "paused", f"journey {plan.journey_id!r} is paused"
        if not checked:
            why = _reentry_check(store, plan, contact_id, workflow_id, now)
        elif plan.journey.reentry_after() != timedelta(0):
            # The caller's read of earlier runs may be stale by now: a start by a tick killed
            # mid-page can land in between, and a short run may already have ended (its
            # workflow id free again, its row just written). Its runs are read again (the
            # contact is not).
            why = _reentry_recheck(store, plan, contact_id, workflow_id, now)
        else:
            why = None
        if why is not None:
            return "reentry", why
        save_plan(store, plan)
        return None


def _reentry_check(
    store: Store, plan: JourneyPlan, contact_id: str, workflow_id: str, now: datetime | None
) -> str | None:
    """Why `reentry` keeps the contact out (None: it may enter); `UnknownContactError` when
    the store has no such contact."""
    if not store.contact_exists(contact_id):
        raise UnknownContactError(contact_id)
    return _reentry_recheck(store, plan, contact_id, workflow_id, now)


def _reentry_recheck(
    store: Store, plan: JourneyPlan, contact_id: str, workflow_id: str, now: datetime | None
) -> str | None:
    earlier = [
        run
        for run in store.runs_for_contact(contact_id, plan.journey_id)
        if run.workflow_id == workflow_id
    ]
    return reentry_refusal(plan.journey, earlier, now or datetime.now(UTC))


def _refused(result: StartResult, refusal: Refusal, reason: str) -> StartResult:
    return result.model_copy(update={"refused": refusal, "reason": reason})


def _address_of(client: Client) -> str:
    target = getattr(client.service_client.config, "target_host", None)
    return str(target) if target else "the configured address"


async def ended_run(
    handle: WorkflowHandle[Any, JourneyResult], query_timeout: timedelta = timedelta(seconds=5)
) -> EndedRun:
    """An ended run's result with its timeline. A JourneyV2 run's result leaves the timeline
    out (it would be written into the run's history); its `timeline` query answers after the
    end too, a worker replaying the run (so a worker must be running)."""
    result: JourneyResult = await handle.result()
    timeline = result.timeline  # a run of the legacy type carries it
    if timeline is None:
        try:
            timeline = await handle.query(JourneyWorkflow.timeline, rpc_timeout=query_timeout)
        except WorkflowQueryFailedError:
            # The replay behind it can trip the SDK's 2 s deadlock detector on a starved CPU;
            # the query is read-only, so once more.
            timeline = await handle.query(JourneyWorkflow.timeline, rpc_timeout=query_timeout)
    return EndedRun(**{**dict(result), "timeline": timeline})
