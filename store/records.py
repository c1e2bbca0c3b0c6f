"""What the store takes and returns: frozen pydantic models, never ORM objects.

Validation lives here, so bad input is refused with an error naming the field before anything is
written: phone numbers in E.164, IANA time zones, plausible email addresses. Every timestamp is
timezone-aware UTC (a naive one is taken to be UTC).
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, field_validator
from pydantic_core import PydanticCustomError

from store.types import as_utc, utcnow
from store.vocab import (
    Category,
    Channel,
    ConsentStatus,
    MessageStatus,
    RunStatus,
)

# ASCII digits only (`\d` would take any Unicode digit); matched with fullmatch.
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
LOCALE = re.compile(r"[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*")

UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
Id = Annotated[str, Field(min_length=1, max_length=255)]


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_iana_timezone(name: str) -> bool:
    if name in _timezones():
        return True
    try:  # a zone newer than the listing, or a listing that could not be read
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return "/" in name or name == "UTC"


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ContactRecord(_Frozen):
    """A contact profile. In `Store.upsert_contact`, a field left `None` keeps the stored value
    and `attributes` are merged key by key into the stored ones."""

    id: Id
    email: str | None = None
    phone: str | None = None
    timezone: str | None = None
    locale: str | None = None
    attributes: dict[str, JsonValue] = Field(default_factory=dict)
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    # Computed traits (SPEC §5b), filled in when the store loads a contact; never written by
    # `upsert_contact` (traits come from events).
    traits: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("email", "phone", "timezone", "locale", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_to_none(value)

    def flattened(self) -> dict[str, Any]:
        """`contact.*` as expressions and templates see it: attributes, then traits (a trait
        wins over an attribute of the same name), then the profile fields; no None values."""
        contact: dict[str, Any] = {**self.attributes, **self.traits}
        contact.update(
            {
                "id": self.id,
                "email": self.email,
                "phone": self.phone,
                "timezone": self.timezone,
                "locale": self.locale,
                "created_at": self.created_at.isoformat() if self.created_at else None,
            }
        )
        return {key: value for key, value in contact.items() if value is not None}

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 320 or not EMAIL.fullmatch(value)):
            raise PydanticCustomError(
                "invalid_email",
                "email must be an address like name@example.com, got {value}",
                {"value": repr(value)},
            )
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not E164.fullmatch(value):
            raise PydanticCustomError(
                "invalid_phone",
                "phone must be in E.164 format, '+' then 7 to 15 digits "
                "(e.g. +14155550123), got {value}",
                {"value": repr(value)},
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and not is_iana_timezone(value):
            raise PydanticCustomError(
                "invalid_timezone",
                "timezone must be an IANA time zone name (e.g. Europe/Paris), got {value}",
                {"value": repr(value)},
            )
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 35 or not LOCALE.fullmatch(value)):
            raise PydanticCustomError(
                "invalid_locale",
                "locale must be a language tag like en, en-US or pt_BR, got {value}",
                {"value": repr(value)},
            )
        return value


class EventRecord(_Frozen):
    """Something a contact did. `message_id` is the source's id for the event: a second event
    with the same (contact_id, source, message_id) is a duplicate and is ignored."""

    id: int | None = None
    contact_id: Id
    name: Id
    properties: dict[str, JsonValue] = Field(default_factory=dict)
    timestamp: UtcDatetime = Field(default_factory=utcnow)
    source: Annotated[str, Field(min_length=1, max_length=64)] = "api"
    message_id: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    received_at: UtcDatetime | None = None
    routed_at: UtcDatetime | None = None


class ConsentRecord(_Frozen):
    contact_id: Id
    channel: Channel
    topic: str | None = None
    status: ConsentStatus
    source: str
    updated_at: UtcDatetime


class LedgerEntry(_Frozen):
    """One row of the message ledger."""

    id: int
    idempotency_key: str
    workflow_id: str | None
    step_id: str | None
    journey: str | None
    contact_id: str
    channel: Channel
    template: str | None
    variant: str | None = None
    category: Category
    recipient: str | None
    provider: str | None
    provider_message_id: str | None
    status: MessageStatus
    reason: str | None
    error: str | None
    subject: str | None
    body: str | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    sent_at: UtcDatetime | None


class RunRecord(_Frozen):
    """One journey run. `id` is assigned by the store."""

    id: int | None = None
    workflow_id: Id
    run_id: Id
    contact_id: Id
    journey: Id
    version: Annotated[str, Field(min_length=1, max_length=64)]
    status: RunStatus = "running"
    entered_at: UtcDatetime = Field(default_factory=utcnow)
    ended_at: UtcDatetime | None = None
    outcome: str | None = None
    variant: str | None = None
    holdout: bool = False
    data: dict[str, JsonValue] = Field(default_factory=dict)


class RunStepRecord(_Frozen):
    """A run reached a step: when first, its visit number (`seq`, counting every step visit of
    the run in order), its kind, and for a split the arm it chose."""

    step_id: Id
    kind: Annotated[str, Field(min_length=1, max_length=32)]
    reached_at: UtcDatetime
    seq: Annotated[int, Field(ge=1)]
    variant: str | None = None


class ErasureResult(_Frozen):
    """What `Store.delete_contact` did."""

    contact_id: str
    profile_deleted: bool
    events_deleted: int
    consents_deleted: int
    messages_redacted: int
    runs_redacted: int
    addresses_suppressed: int


class WinnerDecisionRecord(_Frozen):
    """A content experiment's winner (`winner_decisions`): `counts` is, per variant, the
    messages sent and how many of them succeeded on the metric, as the test saw them."""

    journey: Id
    step_id: Id
    winner: str
    metric: str
    confidence: float
    p_value: float
    counts: dict[str, dict[str, int]]
    decided_at: UtcDatetime
    decided_by: str
