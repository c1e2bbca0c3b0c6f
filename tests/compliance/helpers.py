"""Signing webhook requests the way SendGrid and Twilio do, and driving real sends."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

from activities.journey_activities import JourneyActivities
from activities.plans import save_plan
from workflows.contracts import MessageContext, SendOutcome, SendRequest, TemplateRef
from workflows.plan import JourneyPlan

PUBLIC_URL = "https://rapport.test"
TWILIO_TOKEN = "twilio-test-auth-token"
# A Monday, 15:00 UTC: 10:00 in New York, outside every quiet-hours window used here.
DAYTIME = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


@dataclass
class SendGridSigner:
    """An ECDSA P-256 key pair made for the test, as SendGrid's Signed Event Webhook uses."""

    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def public_key(self) -> str:
        """Base64 DER SubjectPublicKeyInfo: the form SendGrid shows the verification key in."""
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def headers(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.private_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }


def sendgrid_body(*events: dict[str, Any]) -> bytes:
    return json.dumps(list(events)).encode()


def sendgrid_event(kind: str, email: str, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "email": email,
        "timestamp": int(time.time()),
        "event": kind,
        "sg_event_id": uuid.uuid4().hex[:22],
        "sg_message_id": f"sg{uuid.uuid4().hex[:12]}.filter0001.16648.5515E0B88.0",
    }
    event.update(fields)
    return event


async def post_sendgrid(
    client: httpx.AsyncClient, signer: SendGridSigner, *events: dict[str, Any]
) -> httpx.Response:
    body = sendgrid_body(*events)
    return await client.post("/webhooks/sendgrid", content=body, headers=signer.headers(body))


def twilio_signature(path: str, params: dict[str, str], token: str = TWILIO_TOKEN) -> str:
    return RequestValidator(token).compute_signature(PUBLIC_URL + path, params)


async def post_twilio(
    client: httpx.AsyncClient,
    path: str,
    params: dict[str, str],
    *,
    token: str = TWILIO_TOKEN,
    signature: str | None = None,
) -> httpx.Response:
    """POST form parameters to a Twilio webhook, signed as Twilio signs them."""
    headers = {"X-Twilio-Signature": signature or twilio_signature(path, params, token)}
    return await client.post(path, data=params, headers=headers)


def inbound(sender: str, text: str, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": f"SM{uuid.uuid4().hex}",
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+15005550006",
        "Body": text,
        "NumMedia": "0",
        **extra,
    }


def send_request(
    plan: JourneyPlan,
    step_id: str,
    contact_id: str,
    *,
    now: datetime = DAYTIME,
    key: str | None = None,
    data: dict[str, Any] | None = None,
) -> SendRequest:
    """What the workflow hands the send activity for this step of a compiled journey: the plan
    version and the step (the activity reads the rest from the stored plan)."""
    step = plan.step(plan.index_of(step_id))
    assert getattr(step, "send", None) in ("email", "sms"), f"{step_id} is not a send step"
    variants = getattr(step, "variants", None)
    return SendRequest(
        idempotency_key=key or uuid.uuid4().hex,
        workflow_id=f"journey:{plan.journey_id}:{contact_id}",
        journey=plan.journey_id,
        version=plan.version,
        step_id=step_id,
        contact_id=contact_id,
        context=MessageContext(
            trigger={"name": "order_delivered", "properties": {"order_id": "T-1"}},
            now=now,
        ),
        data=data,
        # A content experiment's send names the contact's variant (here the first).
        variant=next(iter(variants)) if variants else None,
    )


def inline_send_request(
    plan: JourneyPlan, step_id: str, contact_id: str, **kwargs: Any
) -> SendRequest:
    """The same send in the form older releases wrote: the channel, category, template and
    settings inline, no plan version (the activity still reads it as it is)."""
    request = send_request(plan, step_id, contact_id, **kwargs)
    fields = plan.send_fields(step_id)
    template = TemplateRef(
        journey=plan.journey_id,
        version=plan.version,
        channel=fields["channel"],
        name=fields.pop("template"),
    )
    context = request.context.model_copy(
        update={"journey_data": {**plan.journey.data, **(request.data or {})}}
    )
    return request.model_copy(
        update={**fields, "template": template, "context": context, "version": None, "data": None}
    )


async def send(
    activities: JourneyActivities,
    plan: JourneyPlan,
    step_id: str,
    contact_id: str,
    **kwargs: Any,
) -> SendOutcome:
    """A real send through the activity: ledger claim, policy, render, provider (the outbox)."""
    save_plan(activities.store, plan)
    request = send_request(plan, step_id, contact_id, **kwargs)
    if plan.send_fields(step_id)["channel"] == "email":
        return await activities.send_email(request)
    return await activities.send_sms(request)
