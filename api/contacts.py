"""`GET /v1/contacts/{id}`: a contact's profile, consent, runs and messages, from the store."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path

from api.schemas import ConsentView, ContactView, Problem
from api.state import ApiState, api_state

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
        }
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
