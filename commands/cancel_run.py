"""`rapport cancel CONTACT JOURNEY`: cancel the contact's open run(s) of a journey; the store
records them as cancelled."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError

from commands.common import console_out, print_json
from commands.runs import Session, execution_status, handle_for, print_plain, session
from errors import InvalidInputError
from runtime.starter import TemporalUnavailableError, is_unavailable
from settings import Settings, get_settings
from store.vocab import RunStatus
from workflows.ids import workflow_id_for

CLOSE_WAIT_SECONDS = 10.0
ENDED_AS: dict[WorkflowExecutionStatus, RunStatus] = {
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
}


async def _cancel_one(s: Session, workflow_id: str) -> str | None:
    """Cancel the open execution of `workflow_id`; returns how it ended, or None if it was not
    open. Runs Temporal had already closed without the store knowing are recorded too."""
    status = await execution_status(s.client, workflow_id)
    if status is not WorkflowExecutionStatus.RUNNING:
        ended = ENDED_AS.get(status) if status is not None else None
        if ended is not None:
            await asyncio.to_thread(s.store.end_run, workflow_id, outcome=ended, status=ended)
        return None
    handle = handle_for(s.client, workflow_id)
    try:
        await handle.cancel()
    except RPCError as error:
        if is_unavailable(error):
            raise TemporalUnavailableError(
                s.client.service_client.config.target_host, error.message
            ) from None
        raise
    # Give the worker a moment to stop the run; the request is durable either way.
    with contextlib.suppress(WorkflowFailureError, asyncio.TimeoutError):
        await asyncio.wait_for(handle.result(), CLOSE_WAIT_SECONDS)
    final = await execution_status(s.client, workflow_id)
    if final is WorkflowExecutionStatus.COMPLETED:
        return "completed before the cancellation"
    await asyncio.to_thread(s.store.end_run, workflow_id, outcome="cancelled", status="cancelled")
    if final is WorkflowExecutionStatus.RUNNING:
        return "cancellation requested (stops when a worker picks it up)"
    return "cancelled"


async def _cancel(settings: Settings, contact: str, journey: str) -> dict[str, str]:
    async with session(settings) as s:
        runs = await asyncio.to_thread(s.store.runs_for_contact, contact, journey)
        workflow_ids = {run.workflow_id for run in runs if run.status == "running"}
        workflow_ids.add(workflow_id_for(journey, contact))
        results: dict[str, str] = {}
        for workflow_id in sorted(workflow_ids):
            outcome = await _cancel_one(s, workflow_id)
            if outcome is not None:
                results[workflow_id] = outcome
        return results


def command(
    contact: Annotated[str, typer.Argument(help="The contact's id.")],
    journey: Annotated[str, typer.Argument(help="The journey name.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Cancel a contact's run of a journey."""
    results = asyncio.run(_cancel(get_settings(), contact, journey))
    if not results:
        raise InvalidInputError(f"{contact!r} has no open run of {journey!r}")
    if json_output:
        print_json({"contact_id": contact, "journey": journey, "cancelled": results})
        return
    out = console_out()
    for workflow_id, outcome in results.items():
        print_plain(out, f"{workflow_id}: {outcome}")
