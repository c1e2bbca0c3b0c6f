"""`run_steps` keyed by the run's integer id, and covering indexes for the journey report.

The report joined 100k runs to their steps on the text pair (workflow id, run id), and read
each run and message row behind its index. Now `run_steps.run_key` is the run's `runs.id`, and
the runs, steps and messages the report reads come from indexes alone: the runs' and the
messages' indexes are widened (same leading columns, so every other query keeps its index),
the steps get one. Existing step rows get their run's id; a step row whose run is not recorded
(none should be) is dropped.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# As in store/models.py at this revision.
RUNS_REPORT = ["journey", "entered_at", "holdout", "outcome", "ended_at", "workflow_id"]
MESSAGES_REPORT = ["workflow_id", "created_at", "journey", "channel", "status"]
RUN_STEPS_REPORT = [
    "run_key",
    "last_seq",
    "step_id",
    "first_seq",
    "kind",
    "variant",
    "first_reached_at",
]


def upgrade() -> None:
    op.add_column("run_steps", sa.Column("run_key", BigId, nullable=True))
    op.execute(
        "UPDATE run_steps SET run_key = (SELECT runs.id FROM runs"
        " WHERE runs.workflow_id = run_steps.workflow_id AND runs.run_id = run_steps.run_id)"
    )
    op.execute("DELETE FROM run_steps WHERE run_key IS NULL")
    with op.batch_alter_table("run_steps") as batch:
        batch.drop_constraint("uq_run_steps_run_step", type_="unique")
        batch.drop_column("workflow_id")
        batch.drop_column("run_id")
        batch.alter_column("run_key", existing_type=BigId, nullable=False)
        batch.create_unique_constraint("uq_run_steps_run_step", ["run_key", "step_id"])
    op.create_index("ix_run_steps_report", "run_steps", RUN_STEPS_REPORT)
    op.drop_index("ix_runs_journey_entered_at", table_name="runs")
    op.create_index("ix_runs_report", "runs", RUNS_REPORT)
    op.drop_index("ix_messages_workflow_id_created_at", table_name="messages")
    op.create_index("ix_messages_report", "messages", MESSAGES_REPORT)


def downgrade() -> None:
    op.drop_index("ix_messages_report", table_name="messages")
    op.create_index("ix_messages_workflow_id_created_at", "messages", ["workflow_id", "created_at"])
    op.drop_index("ix_runs_report", table_name="runs")
    op.create_index("ix_runs_journey_entered_at", "runs", ["journey", "entered_at"])
    op.drop_index("ix_run_steps_report", table_name="run_steps")
    with op.batch_alter_table("run_steps") as batch:
        batch.add_column(sa.Column("workflow_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("run_id", sa.String(255), nullable=True))
    op.execute(
        "UPDATE run_steps SET"
        " workflow_id = (SELECT runs.workflow_id FROM runs WHERE runs.id = run_steps.run_key),"
        " run_id = (SELECT runs.run_id FROM runs WHERE runs.id = run_steps.run_key)"
    )
    with op.batch_alter_table("run_steps") as batch:
        batch.drop_constraint("uq_run_steps_run_step", type_="unique")
        batch.drop_column("run_key")
        batch.alter_column("workflow_id", existing_type=sa.String(255), nullable=False)
        batch.alter_column("run_id", existing_type=sa.String(255), nullable=False)
        batch.create_unique_constraint(
            "uq_run_steps_run_step", ["workflow_id", "run_id", "step_id"]
        )
