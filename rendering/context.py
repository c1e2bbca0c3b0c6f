"""The variables a message template sees (SPEC §4): the expression names plus links and brand.

Built the same way for `rapport preview` and for the send activities, so a preview shows exactly
what a contact would get.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from settings import Settings
from workflows.expressions import ExpressionContext, HistoryEvent


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign_token(secret: str, payload: Mapping[str, str]) -> str:
    """An unforgeable, non-expiring token: the payload and its HMAC-SHA256."""
    body = _b64(json.dumps(dict(payload), sort_keys=True, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac[:18])}"


def unsubscribe_token(settings: Settings, contact_id: str, message_key: str) -> str:
    return sign_token(settings.secret.get_secret_value(), {"c": contact_id, "m": message_key})


def message_variables(
    *,
    contact: Mapping[str, Any],
    journey_data: Mapping[str, Any],
    trigger: Mapping[str, Any] | None,
    steps: Mapping[str, Any],
    now: datetime,
    history: Iterable[HistoryEvent],
    settings: Settings,
    message_key: str,
) -> dict[str, Any]:
    context = ExpressionContext(
        now=now,
        contact=contact,
        journey=journey_data,
        trigger=trigger,
        steps=steps,
        history=tuple(history),
    )
    base = settings.public_url.rstrip("/")
    token = unsubscribe_token(settings, str(contact.get("id", "")), message_key)
    variables = context.variables()
    variables.setdefault("trigger", {"name": None, "properties": {}})
    variables.update(
        {
            "unsubscribe_url": f"{base}/u/{token}",
            "preferences_url": f"{base}/u/{token}?view=preferences",
            "brand": settings.brand,
        }
    )
    return variables
