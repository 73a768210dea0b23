"""Status and step indexes that also carry the measured columns, for statistics.

The indexes keep their leading columns (flow_id, status or step_id, created_at, id), so
pages and cursors use them as before; the measured columns after id let statistics of
a flow, a status or a step read the index alone.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_MEASURED = (
    "status",
    "step_id",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "estimated_cost",
)


def upgrade() -> None:
    for column in ("status", "step_id"):
        op.create_index(
            f"ix_step_results_flow_{column}_covering",
            "step_results",
            ["flow_id", column, "created_at", "id", *(m for m in _MEASURED if m != column)],
        )
        op.drop_index(f"ix_step_results_flow_{column}_created", table_name="step_results")


def downgrade() -> None:
    for column in ("status", "step_id"):
        op.create_index(
            f"ix_step_results_flow_{column}_created",
            "step_results",
            ["flow_id", column, "created_at", "id"],
        )
        op.drop_index(f"ix_step_results_flow_{column}_covering", table_name="step_results")
