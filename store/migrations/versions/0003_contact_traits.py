"""Computed contact traits (SPEC §5b): one row per contact and trait.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_traits",
        sa.Column("contact_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", "name", name=op.f("pk_contact_traits")),
    )
    op.create_index("ix_contact_traits_name_value_text", "contact_traits", ["name", "value_text"])


def downgrade() -> None:
    op.drop_index("ix_contact_traits_name_value_text", table_name="contact_traits")
    op.drop_table("contact_traits")
