"""The variables a message template sees (SPEC §4): the expression names plus links and brand.

Built the same way for `rapport preview` and for the send activities, so a preview shows exactly
what a contact would get.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from consent.tokens import sign_token, unsubscribe_token
from settings import Settings
from workflows.expressions import ExpressionContext, HistoryEvent

__all__ = ["message_variables", "sign_token", "unsubscribe_token"]


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
