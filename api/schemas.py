"""Request and response bodies of the HTTP API, with the examples `/openapi.json` shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from store.records import ConsentRecord, ContactRecord, LedgerEntry, RunRecord

ALICE_EXAMPLE: dict[str, Any] = {
    "id": "alice",
    "email": "alice@example.com",
    "phone": "+12125550143",
    "timezone": "America/New_York",
    "locale": "en_US",
    "attributes": {"first_name": "Alice", "plan": "starter"},
    "traits": {"orders": 1, "lifetime_spend": 42.5, "tier": "bronze", "rfm_segment": "new"},
    "created_at": "2025-03-01T09:30:00Z",
    "updated_at": "2025-03-01T09:30:00Z",
    "consent": {"email": "subscribed", "sms": "subscribed", "records": []},
    "runs": [
        {
            "journey": "onboarding",
            "version": "3f2a9c1b7d10",
            "workflow_id": "journey:onboarding:alice",
            "run_id": "0195f0c2-7c1e-7d3a-9a51-4c1f2e8b6a10",
            "status": "running",
            "outcome": None,
            "entered_at": "2025-03-01T09:30:01Z",
            "ended_at": None,
            "holdout": False,
            "variant": None,
        }
    ],
    "messages": [
        {
            "journey": "onboarding",
            "workflow_id": "journey:onboarding:alice",
            "step_id": "welcome",
            "channel": "email",
            "category": "transactional",
            "template": "onboarding/welcome",
            "recipient": "alice@example.com",
            "subject": "Welcome to Rapport Coffee Co., Alice",
            "status": "sent",
            "reason": None,
            "provider": "outbox",
            "provider_message_id": "outbox-5b0c1d2e3f405162",
            "created_at": "2025-03-01T09:30:01Z",
            "sent_at": "2025-03-01T09:30:01Z",
        }
    ],
}


class Problem(BaseModel):
    """Every 4xx/503 body: what went wrong, in words a developer can act on."""

    detail: str = Field(examples=["no contact 'zoe' in the store"])


class Conflict(Problem):
    refused: Literal["already_running", "reentry", "paused"] = Field(
        description="already_running: the contact is in the journey now; reentry: the "
        "journey's reentry rule keeps it out; paused: the journey takes no new entries."
    )
    workflow_id: str


class StartRunRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"contact_id": "alice", "data": {"offer_code": "SPRING15"}}]
        },
    )

    contact_id: str = Field(min_length=1, max_length=255, description="The contact's id.")
    data: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="The run's own data: overrides the journey's `data` as `journey.*`.",
    )


class StartRunResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "journey": "onboarding",
                    "version": "3f2a9c1b7d10",
                    "contact_id": "alice",
                    "workflow_id": "journey:onboarding:alice",
                    "run_id": "0195f0c2-7c1e-7d3a-9a51-4c1f2e8b6a10",
                }
            ]
        }
    )

    journey: str
    version: str
    contact_id: str
    workflow_id: str
    run_id: str


class RunView(BaseModel):
    journey: str
    version: str
    workflow_id: str
    run_id: str
    status: str
    outcome: str | None
    entered_at: datetime
    ended_at: datetime | None
    holdout: bool
    variant: str | None

    @classmethod
    def of(cls, run: RunRecord) -> RunView:
        return cls.model_validate(run.model_dump(exclude={"id", "contact_id", "data"}))


class MessageView(BaseModel):
    journey: str | None
    workflow_id: str | None
    step_id: str | None
    channel: str
    category: str
    template: str | None
    recipient: str | None
    subject: str | None
    status: str
    reason: str | None
    provider: str | None
    provider_message_id: str | None
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, entry: LedgerEntry) -> MessageView:
        data = entry.model_dump()
        data["reason"] = entry.reason or entry.error
        return cls.model_validate(data)


class ConsentView(BaseModel):
    email: str = Field(description="Marketing consent for email: subscribed or unsubscribed.")
    sms: str = Field(description="Marketing consent for SMS: subscribed or unsubscribed.")
    records: list[ConsentRecord] = Field(
        default_factory=list, description="Every stored choice, with its source and time."
    )


class ContactView(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ALICE_EXAMPLE]})

    id: str
    email: str | None
    phone: str | None
    timezone: str | None
    locale: str | None
    attributes: dict[str, JsonValue]
    traits: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Computed traits (traits/*.yaml and the built-in rfm_*), read as "
        "contact.NAME in journeys and templates; see docs/traits.md.",
    )
    created_at: datetime | None
    updated_at: datetime | None
    consent: ConsentView
    runs: list[RunView]
    messages: list[MessageView]

    @classmethod
    def build(
        cls,
        contact: ContactRecord,
        consent: ConsentView,
        runs: list[RunRecord],
        messages: list[LedgerEntry],
    ) -> ContactView:
        return cls(
            **contact.model_dump(),
            consent=consent,
            runs=[RunView.of(run) for run in runs],
            messages=[MessageView.of(entry) for entry in messages],
        )


class Health(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "journeys": ["onboarding"]}]}
    )

    status: Literal["ok"] = "ok"
    journeys: list[str] = Field(description="The journeys loaded at startup.")


class ErasureView(BaseModel):
    """What `DELETE /v1/contacts/{id}` did."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "contact_id": "alice",
                    "runs_cancelled": ["journey:onboarding:alice"],
                    "executions_deleted": [
                        "journey:onboarding:alice",
                        "journey:feedback_follow_up:alice:B-3318",
                    ],
                    "outbox_files_deleted": 2,
                    "profile_deleted": True,
                    "events_deleted": 12,
                    "consents_deleted": 2,
                    "messages_redacted": 3,
                    "runs_redacted": 1,
                    "addresses_suppressed": 2,
                }
            ]
        }
    )

    contact_id: str
    runs_cancelled: list[str] = Field(
        description="Workflow ids of the contact's runs that were still open: ended by the "
        "deletion, recorded as cancelled."
    )
    executions_deleted: list[str] = Field(
        description="Workflow ids of every execution of the contact deleted from Temporal, "
        "open or closed, with its history."
    )
    outbox_files_deleted: int = Field(
        description="The contact's messages removed from the local outbox (`.eml`, `.txt`)."
    )
    profile_deleted: bool
    events_deleted: int
    consents_deleted: int
    messages_redacted: int = Field(
        description="Ledger rows kept for counts and status, without subject, body or recipient."
    )
    runs_redacted: int = Field(description="Runs kept for reports, without their data.")
    addresses_suppressed: int = Field(
        description="The contact's addresses, suppressed by hash so they are never messaged "
        "again by mistake."
    )
