"""The closed vocabularies of the store (SPEC §5), shared by the records and the schema."""

from __future__ import annotations

from typing import Literal, get_args

Channel = Literal["email", "sms"]
ConsentStatus = Literal["subscribed", "unsubscribed"]
SuppressionReason = Literal["bounce", "spam_report", "stop", "erased", "manual"]
MessageStatus = Literal[
    "queued", "sent", "delivered", "opened", "clicked", "bounced", "failed", "suppressed", "skipped"
]
Category = Literal["marketing", "transactional"]
RunStatus = Literal["running", "completed", "failed", "cancelled", "terminated"]

CHANNELS: tuple[str, ...] = get_args(Channel)
CONSENT_STATUSES: tuple[str, ...] = get_args(ConsentStatus)
SUPPRESSION_REASONS: tuple[str, ...] = get_args(SuppressionReason)
MESSAGE_STATUSES: tuple[str, ...] = get_args(MessageStatus)
CATEGORIES: tuple[str, ...] = get_args(Category)
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)

# Messages in these statuses went out: they count against the marketing frequency cap.
SENT_STATUSES: tuple[MessageStatus, ...] = ("sent", "delivered", "opened", "clicked")

# Progress of a sent message; provider callbacks may arrive out of order, and a later report
# of an earlier stage (a `delivered` after `opened`) must not move a message backwards.
PROGRESS_RANK: dict[str, int] = {"queued": 0, "sent": 1, "delivered": 2, "opened": 3, "clicked": 4}


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """The SQL text of a CHECK constraint keeping `column` within `values`."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"
