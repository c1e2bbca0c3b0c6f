"""Erasure (GDPR, SPEC §7): what `DELETE /v1/contacts/{id}` and `rapport contacts erase ID` do.

First every open journey run of the contact is cancelled, and Temporal must accept each
cancellation (else `TemporalUnavailableError` and nothing is deleted, so a retry starts over);
then `Store.delete_contact` deletes the profile, events and consent, keeps ledger rows and runs
for counts without personal data, and suppresses the contact's addresses by hash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from runtime.starter import TemporalUnavailableError, is_unavailable
from store import ErasureResult, Store
from workflows.ids import workflow_id_for
from workflows.model import EventTrigger
from workflows.plan import JourneyPlan


@dataclass
class Erased:
    result: ErasureResult
    runs_cancelled: list[str] = field(default_factory=list)


async def _cancel(client: Client, workflow_id: str) -> bool:
    """Request cancellation of the workflow's open run; False when none is open."""
    try:
        await client.get_workflow_handle(workflow_id).cancel()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False  # never started, or already closed
        if is_unavailable(error):
            raise TemporalUnavailableError(
                client.service_client.config.target_host, error.message
            ) from None
        raise
    return True


async def erase_contact(
    client: Callable[[], Awaitable[Client]],
    store: Store,
    plans: Mapping[str, JourneyPlan],
    contact_id: str,
) -> Erased:
    """Cancel the contact's runs, then erase it. `client()` is only called when the contact may
    have a run to cancel."""
    runs = await asyncio.to_thread(store.runs_for_contact, contact_id)
    targets = {run.workflow_id for run in runs if run.status == "running"}
    # A run started a moment ago may not be in the store yet; unkeyed runs have a known id.
    targets.update(
        workflow_id_for(journey_id, contact_id)
        for journey_id, plan in plans.items()
        if not (isinstance(plan.journey.trigger, EventTrigger) and plan.journey.trigger.key)
    )
    cancelled: list[str] = []
    if targets:
        temporal = await client()
        for workflow_id in sorted(targets):
            if await _cancel(temporal, workflow_id):
                cancelled.append(workflow_id)
    for workflow_id in cancelled:
        await asyncio.to_thread(store.end_run, workflow_id, outcome="cancelled", status="cancelled")
    result = await asyncio.to_thread(store.delete_contact, contact_id)
    return Erased(result, cancelled)
