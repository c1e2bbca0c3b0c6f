"""`POST /webhooks/sendgrid`: SendGrid's Event Webhook (SPEC §7; docs/compliance.md).

The body is a JSON array of events, signed (Signed Event Webhook) with the key pair whose
public half is `SENDGRID_WEBHOOK_PUBLIC_KEY`. Without that key the endpoint refuses everything
(403): unsigned delivery feedback could unsubscribe or suppress anyone. Checked in this order:
size (413), signature and timestamp (401 missing, 403 wrong or more than 5 minutes off), then the
JSON (422). Each event is applied by `consent.feedback.apply_sendgrid_event` — ledger status,
suppressions, consent — and becomes an `email_*` event routed to journeys; events seen before
(same `sg_event_id`, for any address, known or not) change nothing. A 503 (Temporal down) makes
SendGrid retry the batch, which then only finishes what was left.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from api.state import ApiState, api_state
from api.webhooks_common import PROBLEM_RESPONSES, deliver_applied, read_body, size_limit
from consent.feedback import SOURCE_SENDGRID, Applied, apply_sendgrid_event
from consent.signatures import KeyConfigError, SignatureError, verify_sendgrid

log = logging.getLogger("rapport.webhooks")

router = APIRouter(tags=["webhooks"])

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_BODY = size_limit(8 * 1024)  # SendGrid batches events; a few MB at most in practice
MAX_EVENTS = 20_000


class WebhookReceipt(BaseModel):
    """What a webhook call did, by event."""

    received: int = Field(examples=[3])
    applied: int = Field(examples=[2])
    duplicates: int = Field(examples=[1])
    ignored: int = Field(0, examples=[0])


def _events(body: bytes) -> list[dict[str, Any]]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise HTTPException(
            422, detail="the body is not JSON: expected an array of events"
        ) from None
    if not isinstance(payload, list) or not all(isinstance(e, dict) for e in payload):
        raise HTTPException(422, detail="expected a JSON array of event objects")
    if len(payload) > MAX_EVENTS:
        raise HTTPException(413, detail=f"more than {MAX_EVENTS} events in one request")
    return payload


def _apply_all(state: ApiState, events: list[dict[str, Any]]) -> list[Applied]:
    results = []
    in_batch: set[str] = set()
    for raw in events:
        event_id = raw.get("sg_event_id")
        if isinstance(event_id, str) and event_id in in_batch:
            results.append(Applied("duplicate"))  # its events are stored after the batch
            continue
        if isinstance(event_id, str):
            in_batch.add(event_id)
        try:
            results.append(apply_sendgrid_event(state.store, raw, state.plans))
        except ValueError as error:  # a field the store refuses; never the whole batch
            log.warning("sendgrid event %s ignored: %s", str(raw.get("event"))[:40], error)
            results.append(Applied("ignored", why="invalid event"))
    return results


@router.post(
    "/webhooks/sendgrid",
    response_model=WebhookReceipt,
    summary="SendGrid Event Webhook (signed)",
    description="Delivery and engagement events from SendGrid: updates the message ledger, "
    "suppresses bounced and complaining addresses, revokes email consent on unsubscribes, and "
    "routes `email_delivered`, `email_opened`, `email_clicked`, `email_bounced`, … to journeys. "
    "Requires the Signed Event Webhook (`SENDGRID_WEBHOOK_PUBLIC_KEY`).",
    responses=PROBLEM_RESPONSES | {422: {"description": "Not a JSON array of events."}},
)
async def sendgrid_events(
    request: Request, state: Annotated[ApiState, Depends(api_state)]
) -> WebhookReceipt:
    body = await read_body(request, MAX_BODY, "a SendGrid event batch")
    key = state.settings.sendgrid_webhook_public_key
    if not key or not key.strip():
        raise HTTPException(
            403,
            detail="the SendGrid webhook is disabled: set SENDGRID_WEBHOOK_PUBLIC_KEY to the "
            "Signed Event Webhook verification key",
        )
    try:
        verify_sendgrid(
            key, request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER), body
        )
    except SignatureError as error:
        log.warning("sendgrid webhook refused: %s", error.detail)
        raise HTTPException(error.status, detail=error.detail) from None
    except KeyConfigError as error:
        log.error("%s", error)
        raise HTTPException(
            503, detail=f"{error}; fix the configuration", headers={"Retry-After": "60"}
        ) from None
    events = _events(body)
    results = await asyncio.to_thread(_apply_all, state, events)
    await deliver_applied(state, SOURCE_SENDGRID, results)
    receipt = WebhookReceipt(
        received=len(events),
        applied=sum(r.outcome in ("applied", "reroute") for r in results),
        duplicates=sum(r.outcome == "duplicate" for r in results),
        ignored=sum(r.outcome == "ignored" for r in results),
    )
    log.info(
        "sendgrid webhook: %d events, %d applied, %d duplicates, %d ignored",
        receipt.received,
        receipt.applied,
        receipt.duplicates,
        receipt.ignored,
    )
    return receipt
