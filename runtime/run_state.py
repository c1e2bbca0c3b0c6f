"""A run's live state: the store's record plus what only Temporal knows (whether the execution is
open, and, through the workflow's `status` and `timeline` queries, where the contact stands now);
and cancelling a contact's runs. Shared by `rapport list/inspect/cancel` and the dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from runtime.starter import TemporalUnavailableError, ended_run, is_unavailable
from store import Store
from store.records import LedgerEntry, RunRecord
from store.vocab import RunStatus as StoredRunStatus
from workflows.contracts import JourneyResult, RunStatus, TimelineEntry
from workflows.ids import run_key, workflow_id_for
from workflows.journey_workflow import JourneyWorkflow

QUERY_TIMEOUT = timedelta(seconds=5)
LIVE_CONCURRENCY = 16
CLOSE_WAIT_SECONDS = 10.0
ENDED_AS: dict[WorkflowExecutionStatus, StoredRunStatus] = {
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
}


def handle_for(client: Client, workflow_id: str) -> WorkflowHandle[Any, JourneyResult]:
    return client.get_workflow_handle_for(JourneyWorkflow.run, workflow_id)


def _unavailable(client: Client, error: RPCError) -> TemporalUnavailableError:
    return TemporalUnavailableError(client.service_client.config.target_host, error.message)


async def execution_status(client: Client, workflow_id: str) -> WorkflowExecutionStatus | None:
    """The latest execution's status; None when Temporal has no such workflow (any more)."""
    try:
        description = await handle_for(client, workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        if is_unavailable(error):
            raise _unavailable(client, error) from None
        raise
    return description.status


def status_name(status: WorkflowExecutionStatus | None) -> str | None:
    return status.name.lower() if status is not None else None


@dataclass
class RunState:
    """A stored run plus what Temporal says about it now."""

    record: RunRecord
    execution: str | None = None
    now: RunStatus | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    messages: list[LedgerEntry] = field(default_factory=list)
    note: str | None = None

    @property
    def key(self) -> str | None:
        """The `key:` value of a keyed event trigger (one run per contact and key)."""
        run = self.record
        return run_key(run.workflow_id, run.journey, run.contact_id)

    def summary(self) -> dict[str, Any]:
        run = self.record
        now = self.now
        return {
            "contact_id": run.contact_id,
            "journey": run.journey,
            "version": run.version,
            "workflow_id": run.workflow_id,
            "key": self.key,
            "run_id": run.run_id,
            "status": run.status,
            "outcome": run.outcome,
            "entered_at": run.entered_at.isoformat(),
            "ended_at": run.ended_at.isoformat() if run.ended_at else None,
            "holdout": run.holdout,
            "variant": run.variant,
            "execution": self.execution,
            "step": now.step if now else None,
            "step_kind": now.step_kind if now else None,
            "waiting_for": now.waiting_for if now else None,
            "until": now.until.isoformat() if now and now.until else None,
        }

    def detail(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "timeline": [entry.public() for entry in self.timeline],
            "messages": [message_json(entry) for entry in self.messages],
            "note": self.note,
        }


def message_json(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "step_id": entry.step_id,
        "channel": entry.channel,
        "category": entry.category,
        "template": entry.template,
        "variant": entry.variant,
        "recipient": entry.recipient,
        "subject": entry.subject,
        "status": entry.status,
        "reason": entry.reason or entry.error,
        "provider": entry.provider,
        "provider_message_id": entry.provider_message_id,
        "created_at": entry.created_at.isoformat(),
        "sent_at": entry.sent_at.isoformat() if entry.sent_at else None,
    }


async def live_state(
    client: Client, run: RunRecord, *, latest: bool, with_timeline: bool
) -> RunState:
    """Ask Temporal about `run`. Only the newest run of a workflow id is its current execution;
    older entries are history and keep what the store says."""
    state = RunState(run)
    if not latest:
        return state
    status = await execution_status(client, run.workflow_id)
    state.execution = status_name(status)
    if status is None:
        state.note = "Temporal no longer has this workflow (past its retention period)"
        return state
    handle = handle_for(client, run.workflow_id)
    try:
        if status is WorkflowExecutionStatus.RUNNING:
            state.now = await handle.query(JourneyWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
        if with_timeline:
            if status is WorkflowExecutionStatus.COMPLETED:
                state.timeline = (await ended_run(handle)).timeline
            else:
                state.timeline = await handle.query(
                    JourneyWorkflow.timeline, rpc_timeout=QUERY_TIMEOUT
                )
    except RPCError as error:
        if is_unavailable(error) and error.status != RPCStatusCode.DEADLINE_EXCEEDED:
            raise _unavailable(client, error) from None
        state.note = f"no worker answered the workflow query ({error.message}); is one running?"
    except Exception as error:  # a failed query (e.g. WorkflowQueryFailedError)
        state.note = f"the workflow query failed: {error}"
    return state


async def live_states(
    client: Client, runs: list[RunRecord], *, with_timeline: bool
) -> list[RunState]:
    """`live_state` for many runs at once (bounded), in the order given (newest first)."""
    seen: set[str] = set()
    latest: list[bool] = []
    for run in runs:
        latest.append(run.workflow_id not in seen)
        seen.add(run.workflow_id)
    gate = asyncio.Semaphore(LIVE_CONCURRENCY)

    async def one(run: RunRecord, is_latest: bool) -> RunState:
        async with gate:
            return await live_state(client, run, latest=is_latest, with_timeline=with_timeline)

    return list(await asyncio.gather(*(one(r, f) for r, f in zip(runs, latest, strict=True))))


async def cancel_one(client: Client, store: Store, workflow_id: str) -> str | None:
    """Cancel the open execution of `workflow_id`; returns how it ended, or None if it was not
    open. Runs Temporal had already closed without the store knowing are recorded too."""
    status = await execution_status(client, workflow_id)
    if status is not WorkflowExecutionStatus.RUNNING:
        ended = ENDED_AS.get(status) if status is not None else None
        if ended is not None:
            await asyncio.to_thread(store.end_run, workflow_id, outcome=ended, status=ended)
        return None
    handle = handle_for(client, workflow_id)
    try:
        await handle.cancel()
    except RPCError as error:
        if is_unavailable(error):
            raise TemporalUnavailableError(
                client.service_client.config.target_host, error.message
            ) from None
        raise
    # Give the worker a moment to stop the run; the request is durable either way.
    with contextlib.suppress(WorkflowFailureError, asyncio.TimeoutError):
        await asyncio.wait_for(handle.result(), CLOSE_WAIT_SECONDS)
    final = await execution_status(client, workflow_id)
    if final is WorkflowExecutionStatus.COMPLETED:
        return "completed before the cancellation"
    await asyncio.to_thread(store.end_run, workflow_id, outcome="cancelled", status="cancelled")
    if final is WorkflowExecutionStatus.RUNNING:
        return "cancellation requested (stops when a worker picks it up)"
    return "cancelled"


async def cancel_contact_runs(
    client: Client, store: Store, contact: str, journey: str
) -> dict[str, str]:
    """Cancel the contact's open run(s) of `journey`: workflow id -> how each ended."""
    runs = await asyncio.to_thread(store.runs_for_contact, contact, journey)
    workflow_ids = {run.workflow_id for run in runs if run.status == "running"}
    workflow_ids.add(workflow_id_for(journey, contact))
    results: dict[str, str] = {}
    for workflow_id in sorted(workflow_ids):
        outcome = await cancel_one(client, store, workflow_id)
        if outcome is not None:
            results[workflow_id] = outcome
    return results
