"""What `rapport start`, `list`, `inspect` and `cancel` share: the store and Temporal session,
a run's live state (workflow status and queries) and how runs print.

Runs come from the store (written by the workflow's activities); Temporal adds what only it knows:
whether the execution is open, and — through the workflow's `status` and `timeline` queries —
where the contact stands now.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from errors import RapportError
from runtime.starter import TemporalUnavailableError, connect_client, is_unavailable
from settings import Settings
from store import Store
from store.records import LedgerEntry, RunRecord
from workflows.contracts import JourneyResult, RunStatus, TimelineEntry
from workflows.journey_workflow import JourneyWorkflow

QUERY_TIMEOUT = timedelta(seconds=5)
LIVE_CONCURRENCY = 16


def parse_data(pairs: list[str]) -> dict[str, Any]:
    """`--data k=v …`: values are JSON when they parse as JSON (numbers, true, lists), else text."""
    data: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise RapportError(f"--data expects KEY=VALUE, got {pair!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        data[key.strip()] = value
    return data


@dataclass
class Session:
    settings: Settings
    client: Client
    store: Store


@asynccontextmanager
async def session(settings: Settings) -> AsyncIterator[Session]:
    """Temporal (unreachable: `TemporalUnavailableError`) and the store, closed afterwards."""
    client = await connect_client(settings)
    store = await asyncio.to_thread(Store.open, settings.database)
    try:
        yield Session(settings, client, store)
    finally:
        store.close()


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

    def summary(self) -> dict[str, Any]:
        run = self.record
        now = self.now
        return {
            "contact_id": run.contact_id,
            "journey": run.journey,
            "version": run.version,
            "workflow_id": run.workflow_id,
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
                state.timeline = (await handle.result()).timeline
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


# --- printing ---------------------------------------------------------------------------------


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if value else "-"


def where_now(state: RunState) -> str:
    """'at wait_2 (wait), waiting for time until …' / 'ended: completed'."""
    now = state.now
    if now is not None and now.step is not None:
        text = f"at {now.step} ({now.step_kind})"
        if now.waiting_for:
            target = "a timer" if now.waiting_for == "time" else f"event {now.waiting_for!r}"
            text += f", waiting for {target}"
        if now.until:
            text += f" until {when(now.until)}"
        return text
    if state.execution == "running":
        return "running"
    outcome = state.record.outcome or state.execution or state.record.status
    return f"ended: {outcome}"


def timeline_line(entry: TimelineEntry) -> str:
    parts = [when(entry.at), entry.type]
    if entry.step:
        parts.append(entry.step)
    details = {
        "channel": entry.channel,
        "to": entry.to,
        "subject": entry.subject,
        "status": entry.status,
        "event": entry.event,
        "result": entry.result,
        "outcome": entry.outcome,
        "until": when(entry.until) if entry.until else None,
        "reason": entry.reason,
    }
    parts.extend(f"{key}={value}" for key, value in details.items() if value is not None)
    return "  ".join(parts)


def message_line(entry: LedgerEntry) -> str:
    parts = [
        when(entry.sent_at or entry.created_at),
        entry.step_id or "-",
        entry.channel,
        entry.status,
        entry.recipient or "-",
    ]
    if entry.subject:
        parts.append(repr(entry.subject))
    reason = entry.reason or entry.error
    if reason:
        parts.append(f"({reason})")
    return "  ".join(parts)


def runs_table(states: list[RunState]) -> Table:
    table = Table(show_lines=False)
    for column in ("contact", "journey", "version", "status", "entered", "now"):
        table.add_column(column)
    for state in states:
        run = state.record
        table.add_row(
            run.contact_id,
            run.journey,
            run.version,
            run.status,
            when(run.entered_at),
            where_now(state),
        )
    return table


def print_plain(out: Console, line: str) -> None:
    out.print(line, markup=False, highlight=False)
