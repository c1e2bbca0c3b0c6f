"""Steps each run reached (the journey funnel), and the indexes the reports aggregate through.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "run_steps",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("workflow_id", sa.String(255), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("step_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("variant", sa.String(255), nullable=True),
        sa.Column("first_reached_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_steps")),
        sa.UniqueConstraint("workflow_id", "run_id", "step_id", name="uq_run_steps_run_step"),
    )
    op.create_index("ix_events_name_timestamp", "events", ["name", "timestamp"])
    op.create_index("ix_messages_workflow_id_created_at", "messages", ["workflow_id", "created_at"])
    op.create_index("ix_runs_journey_entered_at", "runs", ["journey", "entered_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_journey_entered_at", table_name="runs")
    op.drop_index("ix_messages_workflow_id_created_at", table_name="messages")
    op.drop_index("ix_events_name_timestamp", table_name="events")
    op.drop_table("run_steps")
