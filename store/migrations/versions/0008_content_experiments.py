"""Content experiments: the variant each message is, and the winner decisions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("variant", sa.String(255), nullable=True))
    op.create_index(
        "ix_messages_journey_step_id_variant", "messages", ["journey", "step_id", "variant"]
    )
    op.create_table(
        "winner_decisions",
        sa.Column("journey", sa.String(255), nullable=False),
        sa.Column("step_id", sa.String(255), nullable=False),
        sa.Column("winner", sa.String(255), nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("journey", "step_id", name=op.f("pk_winner_decisions")),
    )


def downgrade() -> None:
    op.drop_table("winner_decisions")
    op.drop_index("ix_messages_journey_step_id_variant", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("variant")
