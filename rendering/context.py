"""The variables a message template sees (SPEC §4): the expression names plus links and brand.

Built the same way for `rapport preview` and for the send activities, so a preview shows exactly
what a contact would get.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from consent.tokens import sign_token, unsubscribe_token
from settings import Settings
from workflows.contracts import ContactSnapshot

__all__ = ["message_variables", "sign_token", "unsubscribe_token"]


def message_variables(
    snapshot: ContactSnapshot,
    *,
    journey_data: dict[str, Any],
    trigger: dict[str, Any] | None,
    steps: dict[str, Any],
    now: datetime,
    settings: Settings,
    message_key: str,
) -> dict[str, Any]:
    """`snapshot` answers the template's event questions (`template_event_questions`)."""
    context = snapshot.context(now, journey=journey_data, trigger=trigger, steps=steps)
    base = settings.public_url.rstrip("/")
    token = unsubscribe_token(settings, str(snapshot.contact.get("id", "")), message_key)
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
