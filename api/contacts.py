"""`GET /v1/contacts/{id}`: a contact's profile, consent, runs and messages, from the store;
`DELETE /v1/contacts/{id}`: erasure (GDPR) — the contact's runs deleted from Temporal, its data
deleted."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path

from api.schemas import ConsentView, ContactView, ErasureView, Problem
from api.state import ApiState, api_state
from consent import erasure

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])

ContactId = Annotated[str, Path(min_length=1, max_length=255, examples=["alice"])]
NO_SUCH_CONTACT: dict[str, Any] = {
    "model": Problem,
    "description": "No such contact.",
    "content": {"application/json": {"example": {"detail": "no contact 'zoe' in the store"}}},
}


@router.get(
    "/{contact_id}",
    response_model=ContactView,
    summary="A contact's profile, consent, journey runs and messages",
    responses={
        404: NO_SUCH_CONTACT,
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


@router.delete(
    "/{contact_id}",
    response_model=ErasureView,
    summary="Erase a contact (GDPR): delete its runs and its data",
    description="First every workflow execution of the contact, open or closed, is deleted "
    "from Temporal with its history (Temporal must accept each deletion, else 503 and nothing "
    "else is deleted); then, in one transaction, the profile, events, consent and traits are "
    "deleted, ledger rows and runs are kept for counts without personal data, and the "
    "contact's addresses are suppressed by hash; then the contact's outbox files are removed "
    "and SQLite's write-ahead log is checkpointed (docs/compliance.md says what is erased "
    "where). An event that arrives later for the same id creates a new, empty contact.",
    responses={
        404: NO_SUCH_CONTACT,
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
    erased = await erasure.erase_contact(
        state.temporal.get,
        store,
        state.plans,
        contact_id,
        outbox_dir=state.settings.outbox_dir,
        temporal_db=state.settings.dev_server_db,
    )
    state.metrics.erased.inc()
    return ErasureView(
        runs_cancelled=erased.runs_cancelled,
        executions_deleted=erased.executions_deleted,
        outbox_files_deleted=erased.outbox_files_deleted,
        **erased.result.model_dump(),
    )
