"""The loyalty report's per-customer order counts read from an index alone.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_events_name_contact_timestamp", "events", ["name", "contact_id", "timestamp"]
    )


def downgrade() -> None:
    op.drop_index("ix_events_name_contact_timestamp", table_name="events")
