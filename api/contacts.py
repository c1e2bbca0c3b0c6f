"""`GET /v1/contacts/{id}`: a contact's profile, consent, runs and messages, from the store;
`DELETE /v1/contacts/{id}`: erasure (GDPR) — the contact's runs cancelled, its data deleted."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.schemas import ConsentView, ContactView, ErasureView, Problem
from api.state import ApiState, api_state
from runtime.starter import TemporalUnavailableError, is_unavailable
from workflows.journey_workflow import workflow_id_for
from workflows.model import EventTrigger

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])

ContactId = Annotated[str, Path(min_length=1, max_length=255, examples=["alice"])]


@router.get(
    "/{contact_id}",
    response_model=ContactView,
    summary="A contact's profile, consent, journey runs and messages",
    responses={
        404: {
            "model": Problem,
            "description": "No such contact.",
            "content": {
                "application/json": {"example": {"detail": "no contact 'zoe' in the store"}}
            },
        },
        503: {"model": Problem, "description": "The database is unavailable; retry later."},
    },
)
def get_contact(
    contact_id: ContactId, state: Annotated[ApiState, Depends(api_state)]
) -> ContactView:
    # A plain `def`: FastAPI runs it in its thread pool, as the store is synchronous.
    store = state.store
    contact = store.get_contact(contact_id)
    if contact is None:
        raise HTTPException(404, detail=f"no contact {contact_id!r} in the store")
    consent = ConsentView(
        email=store.consent(contact_id, "email"),
        sms=store.consent(contact_id, "sms"),
        records=store.consents_for_contact(contact_id),
    )
    return ContactView.build(
        contact,
        consent,
        store.runs_for_contact(contact_id),
        store.ledger.messages_for_contact(contact_id, limit=500),
    )


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


@router.delete(
    "/{contact_id}",
    response_model=ErasureView,
    summary="Erase a contact (GDPR): cancel its runs, delete its data",
    description="First every open journey run of the contact is cancelled (Temporal must "
    "accept each cancellation, else 503 and nothing is deleted); then, in one transaction, the "
    "profile, events and consent are deleted, ledger rows and runs are kept for counts without "
    "personal data, and the contact's addresses are suppressed by hash. An event that arrives "
    "later for the same id creates a new, empty contact.",
    responses={
        404: {
            "model": Problem,
            "description": "No such contact.",
            "content": {
                "application/json": {"example": {"detail": "no contact 'zoe' in the store"}}
            },
        },
        503: {
            "model": Problem,
            "description": "Temporal or the database is unavailable; nothing was erased. Retry "
            "after Retry-After seconds.",
        },
    },
)
async def erase_contact(
    contact_id: ContactId, state: Annotated[ApiState, Depends(api_state)]
) -> ErasureView:
    store = state.store
    if await asyncio.to_thread(store.get_contact, contact_id) is None:
        raise HTTPException(404, detail=f"no contact {contact_id!r} in the store")
    runs = await asyncio.to_thread(store.runs_for_contact, contact_id)
    targets = {run.workflow_id for run in runs if run.status == "running"}
    # A run started a moment ago may not be in the store yet; unkeyed runs have a known id.
    targets.update(
        workflow_id_for(journey_id, contact_id)
        for journey_id, plan in state.plans.items()
        if not (isinstance(plan.journey.trigger, EventTrigger) and plan.journey.trigger.key)
    )
    cancelled: list[str] = []
    if targets:
        client = await state.temporal.get()
        for workflow_id in sorted(targets):
            if await _cancel(client, workflow_id):
                cancelled.append(workflow_id)
    for workflow_id in cancelled:
        await asyncio.to_thread(store.end_run, workflow_id, outcome="cancelled", status="cancelled")
    erased = await asyncio.to_thread(store.delete_contact, contact_id)
    state.metrics.erased.inc()
    return ErasureView(runs_cancelled=cancelled, **erased.model_dump())
