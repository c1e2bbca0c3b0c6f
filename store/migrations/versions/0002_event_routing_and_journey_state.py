"""Events remember when they were routed; journeys can be paused outside their YAML.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("routed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "journey_states",
        sa.Column("journey", sa.String(255), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("journey", name=op.f("pk_journey_states")),
    )


def downgrade() -> None:
    op.drop_table("journey_states")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("routed_at")
