"""`POST /webhooks/twilio/status` and `/webhooks/twilio/inbound` (SPEC §7; docs/compliance.md).

Both are signed by Twilio (`X-Twilio-Signature`, HMAC of the URL and the sorted form parameters
under `TWILIO_AUTH_TOKEN`), checked against `RAPPORT_PUBLIC_URL` + the path, the URL Twilio was
given (the sends' `status_callback`; the number's or Messaging Service's inbound webhook).
Without an auth token both refuse everything (403). 401 without a signature, 403 with a wrong
one; nothing changes either way.

- status: the message's ledger row follows Twilio (queued, sent, delivered; undelivered and
  failed with the error code); `sms_delivered` / `sms_failed` events go to journeys; error 21610
  (the number sent STOP to Twilio) suppresses it like a STOP.
- inbound: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT (also REVOKE, OPT OUT) suppress the
  number and revoke SMS consent; START, UNSTOP (and YES from an opted-out number) restore them;
  HELP (or INFO) is answered with `RAPPORT_SMS_HELP_TEXT`; anything else is an `sms_replied`
  event with `properties.text` (and `properties.number` for a bare integer such as an NPS score),
  tied to the last SMS Rapport sent to that number. The answer is TwiML.

Each callback is applied once, by its `MessageSid` (with the status for status callbacks),
whoever it is about: Twilio's signature has no timestamp, so a captured request stays valid and
a replayed START must not lift a later STOP.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from api.state import ApiState, api_state
from api.webhooks_common import PROBLEM_RESPONSES, deliver_applied, read_body, size_limit
from consent.feedback import SOURCE_TWILIO, apply_inbound_sms, apply_twilio_status
from consent.signatures import FormParams, SignatureError, verify_twilio
from settings import Settings

log = logging.getLogger("rapport.webhooks")

router = APIRouter(prefix="/webhooks/twilio", tags=["webhooks"])

SIGNATURE_HEADER = "X-Twilio-Signature"
MAX_BODY = size_limit(64)
TWIML = "application/xml"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def twiml_message(text: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Message>{escape(text)}</Message></Response>"
    )


def signed_url(settings: Settings, request: Request) -> str:
    """The URL Twilio signed: the public base URL, this path, and the query string if any."""
    url = settings.public_url.rstrip("/") + request.url.path
    return f"{url}?{request.url.query}" if request.url.query else url


async def verified_form(request: Request, settings: Settings) -> FormParams:
    """The form parameters of a request Twilio signed; 401/403/413 otherwise."""
    body = await read_body(request, MAX_BODY, "a Twilio webhook")
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    if not token:
        raise HTTPException(
            403, detail="the Twilio webhooks are disabled: TWILIO_AUTH_TOKEN is not set"
        )
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        pairs = []  # a body that is not a form cannot match a signature: 403 below
    params = FormParams(pairs)
    try:
        verify_twilio(
            token, signed_url(settings, request), params, request.headers.get(SIGNATURE_HEADER)
        )
    except SignatureError as error:
        log.warning("twilio webhook %s refused: %s", request.url.path, error.detail)
        raise HTTPException(error.status, detail=error.detail) from None
    return params


@router.post(
    "/status",
    summary="Twilio message status callback (signed)",
    description="Twilio's status callbacks for the SMS Rapport sent (`status_callback` of each "
    "send): updates the ledger and routes `sms_delivered` / `sms_failed` to journeys.",
    responses=PROBLEM_RESPONSES,
)
async def twilio_status(
    request: Request, state: Annotated[ApiState, Depends(api_state)]
) -> dict[str, str]:
    params = await verified_form(request, state.settings)
    result = await asyncio.to_thread(apply_twilio_status, state.store, params.first(), state.plans)
    await deliver_applied(state, SOURCE_TWILIO, [result])
    return {"outcome": result.outcome}


@router.post(
    "/inbound",
    summary="Inbound SMS (signed): STOP / START / HELP and replies",
    description="Twilio's incoming-message webhook. Answers TwiML: the help text for HELP, "
    "an empty response otherwise (Twilio confirms STOP/START itself).",
    response_class=Response,
    responses=PROBLEM_RESPONSES
    | {200: {"content": {TWIML: {"example": twiml_message("Rapport: help at …")}}}},
)
async def twilio_inbound(
    request: Request, state: Annotated[ApiState, Depends(api_state)]
) -> Response:
    params = await verified_form(request, state.settings)
    result = await asyncio.to_thread(
        apply_inbound_sms, state.store, params.first(), state.settings, state.plans
    )
    await deliver_applied(state, SOURCE_TWILIO, [result])
    log.info("twilio inbound: %s (%s)", result.keyword or "reply", result.outcome)
    content = twiml_message(result.reply) if result.reply else EMPTY_TWIML
    return Response(content, media_type=TWIML)
