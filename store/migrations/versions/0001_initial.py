"""Initial schema: contacts, consents, suppressions, events, messages (the ledger), runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the definitions at this revision: later model changes get new migrations.
# Names are final (`op.f`): the metadata's naming convention must not be applied to them again.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CHANNELS = "channel IN ('email', 'sms')"


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(16), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("locale", sa.String(35), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
    )
    op.create_index(op.f("ix_contacts_email"), "contacts", ["email"])
    op.create_index(op.f("ix_contacts_phone"), "contacts", ["phone"])

    op.create_table(
        "consents",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("contact_id", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("topic", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
        sa.CheckConstraint(CHANNELS, name=op.f("ck_consents_channel")),
        sa.CheckConstraint(
            "status IN ('subscribed', 'unsubscribed')", name=op.f("ck_consents_status")
        ),
        sa.UniqueConstraint(
            "contact_id", "channel", "topic", name=op.f("uq_consents_contact_channel_topic")
        ),
    )
    op.create_index(
        op.f("uq_consents_contact_channel_all_topics"),
        "consents",
        ["contact_id", "channel"],
        unique=True,
        sqlite_where=sa.text("topic IS NULL"),
        postgresql_where=sa.text("topic IS NULL"),
    )

    op.create_table(
        "suppressions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("address", sa.String(320), nullable=True),
        sa.Column("address_hash", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.CheckConstraint(CHANNELS, name=op.f("ck_suppressions_channel")),
        sa.CheckConstraint(
            "reason IN ('bounce', 'spam_report', 'stop', 'erased', 'manual')",
            name=op.f("ck_suppressions_reason"),
        ),
        sa.UniqueConstraint(
            "channel", "address_hash", "reason", name=op.f("uq_suppressions_channel_hash_reason")
        ),
    )

    op.create_table(
        "events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("contact_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint(
            "contact_id", "source", "message_id", name=op.f("uq_events_contact_source_message")
        ),
    )
    op.create_index(
        op.f("ix_events_contact_name_timestamp"), "events", ["contact_id", "name", "timestamp"]
    )
    op.create_index(op.f("ix_events_contact_timestamp"), "events", ["contact_id", "timestamp"])

    op.create_table(
        "messages",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("workflow_id", sa.String(255), nullable=True),
        sa.Column("step_id", sa.String(255), nullable=True),
        sa.Column("journey", sa.String(255), nullable=True),
        sa.Column("contact_id", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("template", sa.String(255), nullable=True),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=True),
        sa.Column("provider", sa.String(32), nullable=True),
        sa.Column("provider_message_id", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.CheckConstraint(CHANNELS, name=op.f("ck_messages_channel")),
        sa.CheckConstraint(
            "category IN ('marketing', 'transactional')", name=op.f("ck_messages_category")
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'sent', 'delivered', 'opened', 'clicked', 'bounced', "
            "'failed', 'suppressed', 'skipped')",
            name=op.f("ck_messages_status"),
        ),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_messages_idempotency_key")),
    )
    op.create_index(
        op.f("ix_messages_contact_created_at"), "messages", ["contact_id", "created_at"]
    )
    op.create_index(op.f("ix_messages_provider_message_id"), "messages", ["provider_message_id"])
    op.create_index(op.f("ix_messages_journey_status"), "messages", ["journey", "status"])

    op.create_table(
        "runs",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("workflow_id", sa.String(255), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("contact_id", sa.String(255), nullable=False),
        sa.Column("journey", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(255), nullable=True),
        sa.Column("variant", sa.String(255), nullable=True),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'failed', 'cancelled', 'terminated')",
            name=op.f("ck_runs_status"),
        ),
        sa.UniqueConstraint("workflow_id", "run_id", name=op.f("uq_runs_workflow_id_run_id")),
    )
    op.create_index(op.f("ix_runs_journey_status"), "runs", ["journey", "status"])
    op.create_index(op.f("ix_runs_contact_id"), "runs", ["contact_id"])


def downgrade() -> None:
    op.drop_table("runs")
    op.drop_table("messages")
    op.drop_table("events")
    op.drop_table("suppressions")
    op.drop_table("consents")
    op.drop_table("contacts")
