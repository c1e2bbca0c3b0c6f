"""The schema (SPEC §5) as SQLAlchemy 2 typed ORM models.

These are internal to the store: callers get the frozen records of `store.records`. Every change
here needs a migration in `store/migrations/versions/`; `tests/store` checks that the migrated
schema and these models agree on both SQLite and PostgreSQL.

`contact_id` columns carry no foreign key on purpose: events, consent changes and sends can
arrive for a user id before its profile does (a `track` before the `identify`), and erasure
deletes by contact id explicitly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from store.types import UTCDateTime, utcnow
from store.vocab import (
    CATEGORIES,
    CHANNELS,
    CONSENT_STATUSES,
    MESSAGE_STATUSES,
    RUN_STATUSES,
    SUPPRESSION_REASONS,
    sql_in,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit surrogate keys; SQLite only auto-increments a column declared exactly INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# Covering indexes of the journey report (migration 0009), name first.
RUNS_REPORT_INDEX = (
    "ix_runs_report",
    "journey",
    "entered_at",
    "holdout",
    "outcome",
    "ended_at",
    "workflow_id",
)
MESSAGES_REPORT_INDEX = (
    "ix_messages_report",
    "workflow_id",
    "created_at",
    "journey",
    "channel",
    "status",
)
RUN_STEPS_REPORT_INDEX = (
    "ix_run_steps_report",
    "run_key",
    "last_seq",
    "step_id",
    "first_seq",
    "kind",
    "variant",
    "first_reached_at",
)

ID_LEN = 255  # the app's user ids, workflow ids, idempotency keys, names
ADDRESS_LEN = 320  # the longest valid email address


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_email", "email"),
        Index("ix_contacts_phone", "phone"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(ADDRESS_LEN))
    phone: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(35))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Consent(Base):
    """Marketing consent per contact and channel; `topic` NULL is the whole channel."""

    __tablename__ = "consents"
    __table_args__ = (
        CheckConstraint(sql_in("channel", CHANNELS), name="channel"),
        CheckConstraint(sql_in("status", CONSENT_STATUSES), name="status"),
        UniqueConstraint(
            "contact_id", "channel", "topic", name="uq_consents_contact_channel_topic"
        ),
        # NULLs are distinct in a unique constraint: the channel-wide row needs its own index.
        Index(
            "uq_consents_contact_channel_all_topics",
            "contact_id",
            "channel",
            unique=True,
            sqlite_where=text("topic IS NULL"),
            postgresql_where=text("topic IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    contact_id: Mapped[str] = mapped_column(String(ID_LEN))
    channel: Mapped[str] = mapped_column(String(8))
    topic: Mapped[str | None] = mapped_column(String(ID_LEN))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(ID_LEN))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Suppression(Base):
    """An address that must not be sent to. `address_hash` (sha256 of the normalised address)
    is what lookups match, so an entry whose address was erased keeps suppressing it."""

    __tablename__ = "suppressions"
    __table_args__ = (
        CheckConstraint(sql_in("channel", CHANNELS), name="channel"),
        CheckConstraint(sql_in("reason", SUPPRESSION_REASONS), name="reason"),
        UniqueConstraint(
            "channel", "address_hash", "reason", name="uq_suppressions_channel_hash_reason"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(8))
    address: Mapped[str | None] = mapped_column(String(ADDRESS_LEN))
    address_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        # A source's message id is seen once per contact; rows without one are all kept.
        UniqueConstraint(
            "contact_id", "source", "message_id", name="uq_events_contact_source_message"
        ),
        Index("ix_events_contact_name_timestamp", "contact_id", "name", "timestamp"),
        Index("ix_events_contact_timestamp", "contact_id", "timestamp"),
        # Reports aggregate one event name over a period, across contacts.
        Index("ix_events_name_timestamp", "name", "timestamp"),
        # ... and per customer: every order of each contact, read from the index alone.
        Index("ix_events_name_contact_timestamp", "name", "contact_id", "timestamp"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    contact_id: Mapped[str] = mapped_column(String(ID_LEN))
    name: Mapped[str] = mapped_column(String(ID_LEN))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timestamp: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set once every journey start and signal the event causes was accepted by Temporal; a
    # retried delivery of a stored but unrouted event is routed again.
    routed_at: Mapped[datetime | None]


class ProviderEvent(Base):
    """A provider callback that was applied and routed, by the provider's id for it (SendGrid
    `sg_event_id`; Twilio `MessageSid`, with the status for status callbacks): the same signed
    request sent again — a replay — changes nothing, whoever it is about, known contact or not.
    Ids only: nothing personal, so erasure leaves these rows."""

    __tablename__ = "provider_events"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContactTrait(Base):
    """A computed contact property (SPEC §5b): its value, and the running aggregate behind it
    (`state`: count, sum, the timestamp of a first/last value, …) so that each new event
    updates it in O(1). `value_text` is the value as text, for GROUP BY on every backend."""

    __tablename__ = "contact_traits"
    __table_args__ = (Index("ix_contact_traits_name_value_text", "name", "value_text"),)

    contact_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    value_text: Mapped[str | None] = mapped_column(Text)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class JourneyState(Base):
    """Operational state of a journey that lives outside its YAML: paused by `rapport pause`."""

    __tablename__ = "journey_states"

    journey: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Plan(Base):
    """A compiled journey plan, content-addressed: the journey and its version (a hash of the
    journey and its templates) name one document forever. Runs carry only the two names."""

    __tablename__ = "plans"

    journey: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(Base):
    """The message ledger: one row per send, keyed by its idempotency key."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(sql_in("channel", CHANNELS), name="channel"),
        CheckConstraint(sql_in("category", CATEGORIES), name="category"),
        CheckConstraint(sql_in("status", MESSAGE_STATUSES), name="status"),
        UniqueConstraint("idempotency_key", name="uq_messages_idempotency_key"),
        Index("ix_messages_contact_created_at", "contact_id", "created_at"),
        Index("ix_messages_provider_message_id", "provider_message_id"),
        Index("ix_messages_journey_status", "journey", "status"),
        # A run's messages, with what the journey report counts of them (covering).
        Index(*MESSAGES_REPORT_INDEX),
        # A content experiment's engagement per variant (the winner test, the journey report).
        Index("ix_messages_journey_step_id_variant", "journey", "step_id", "variant"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(ID_LEN))
    workflow_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    step_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    journey: Mapped[str | None] = mapped_column(String(ID_LEN))
    contact_id: Mapped[str] = mapped_column(String(ID_LEN))
    channel: Mapped[str] = mapped_column(String(8))
    template: Mapped[str | None] = mapped_column(String(ID_LEN))
    # The content experiment's variant this message is (a send step's `variants`), else NULL.
    variant: Mapped[str | None] = mapped_column(String(ID_LEN))
    category: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(ADDRESS_LEN))
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class WinnerDecision(Base):
    """A content experiment's decision (a send step's `winner` rule): which variant won, on
    what metric, with the test's p-value and the counts it saw, when and by whom. One row per
    journey and step, written once: every later send of the step uses the winner."""

    __tablename__ = "winner_decisions"

    journey: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    step_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    winner: Mapped[str] = mapped_column(String(ID_LEN))
    metric: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    counts: Mapped[dict[str, Any]] = mapped_column()
    decided_at: Mapped[datetime]
    decided_by: Mapped[str] = mapped_column(Text)


class Run(Base):
    """One journey run: a Temporal workflow execution (workflow id + run id)."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(sql_in("status", RUN_STATUSES), name="status"),
        UniqueConstraint("workflow_id", "run_id", name="uq_runs_workflow_id_run_id"),
        Index("ix_runs_journey_status", "journey", "status"),
        Index("ix_runs_contact_id", "contact_id"),
        # A journey's runs by entry, with what the journey report reads of them (covering).
        Index(*RUNS_REPORT_INDEX),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(String(ID_LEN))
    run_id: Mapped[str] = mapped_column(String(ID_LEN))
    contact_id: Mapped[str] = mapped_column(String(ID_LEN))
    journey: Mapped[str] = mapped_column(String(ID_LEN))
    version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    entered_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(ID_LEN))
    variant: Mapped[str | None] = mapped_column(String(ID_LEN))
    holdout: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class RunStep(Base):
    """A step a run reached (the journey funnel, `rapport report journey`): one row per run and
    step however often a loop passes it. `first_seq`/`last_seq` number the run's step visits in
    order, so the step a run left the journey from is the one with its highest `last_seq`;
    `variant` is the arm a split step chose.

    `run_key` is the run's `runs.id`: the reports join 100k runs to their steps on an integer,
    and read every column they need from the covering index (run, last visit first: the step a
    run left from is one lookup)."""

    __tablename__ = "run_steps"
    __table_args__ = (
        UniqueConstraint("run_key", "step_id", name="uq_run_steps_run_step"),
        Index(*RUN_STEPS_REPORT_INDEX),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_key: Mapped[int] = mapped_column(BigId)
    step_id: Mapped[str] = mapped_column(String(ID_LEN))
    kind: Mapped[str] = mapped_column(String(32))
    variant: Mapped[str | None] = mapped_column(String(ID_LEN))
    first_reached_at: Mapped[datetime]
    first_seq: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)
