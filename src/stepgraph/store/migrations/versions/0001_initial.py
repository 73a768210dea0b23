"""Flows and step results, with the indexes of the contract's filters and sorts.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from stepgraph.store.types import ExactCost, Identifier, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SORT_COLUMNS = (
    "created_at",
    "started_at",
    "completed_at",
    "duration_ms",
    "step_order",
    "total_tokens",
    "estimated_cost",
)
_FILTER_COLUMNS = ("record_id", "batch_execution_id", "status", "step_id")


def upgrade() -> None:
    op.create_table(
        "flows",
        sa.Column("id", Identifier(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flows"),
    )
    op.create_index("ix_flows_organization_id", "flows", ["organization_id"])
    op.create_table(
        "step_results",
        sa.Column("id", Identifier(), nullable=False),
        sa.Column("user_id", Identifier(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("batch_execution_id", Identifier(), nullable=True),
        sa.Column("execution_session_id", Identifier(), nullable=True),
        sa.Column("flow_id", Identifier(), nullable=False),
        sa.Column("flow_version_id", Identifier(), nullable=True),
        sa.Column("record_id", Identifier(), nullable=True),
        sa.Column("record_name", sa.Text(), nullable=True),
        sa.Column("step_id", Identifier(), nullable=False),
        sa.Column("step_type", sa.String(255), nullable=False),
        sa.Column("step_name", sa.Text(), nullable=False),
        sa.Column("step_order", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("output_preview", sa.Text(), nullable=True),
        sa.Column("record_metadata", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("step_config", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("input_variables", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("resolved_prompt", sa.Text(), nullable=True),
        sa.Column("model_used", sa.String(255), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("total_tokens", sa.Integer(), nullable=True),
        sa.Column("estimated_cost", ExactCost(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("retry_count", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'completed', 'failed', 'skipped', 'cancelled')",
            name="ck_step_results_status",
        ),
        sa.ForeignKeyConstraint(["flow_id"], ["flows.id"], name="fk_step_results_flow_id_flows"),
        sa.PrimaryKeyConstraint("id", name="pk_step_results"),
    )
    for column in _SORT_COLUMNS:
        op.create_index(f"ix_step_results_flow_{column}", "step_results", ["flow_id", column, "id"])
    for column in _FILTER_COLUMNS:
        op.create_index(
            f"ix_step_results_flow_{column}_created",
            "step_results",
            ["flow_id", column, "created_at", "id"],
        )


def downgrade() -> None:
    op.drop_table("step_results")
    op.drop_table("flows")
