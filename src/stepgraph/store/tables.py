"""Table definitions (SQLAlchemy Core). Migrations mirror these."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from stepgraph.domain import StepStatus
from stepgraph.store.types import ExactCost, Identifier, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

flows = Table(
    "flows",
    metadata,
    Column("id", Identifier, primary_key=True),
    Column("organization_id", Identifier, nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
)

_STATUSES = ", ".join(f"'{s.value}'" for s in StepStatus)

step_results = Table(
    "step_results",
    metadata,
    Column("id", Identifier, primary_key=True),
    Column("user_id", Identifier, nullable=False),
    Column("organization_id", Identifier, nullable=False),
    Column("batch_execution_id", Identifier),
    Column("execution_session_id", Identifier),
    Column("flow_id", Identifier, ForeignKey("flows.id"), nullable=False),
    Column("flow_version_id", Identifier),
    Column("record_id", Identifier),
    Column("record_name", Text),
    Column("step_id", Identifier, nullable=False),
    Column("step_type", String(255), nullable=False),
    Column("step_name", Text, nullable=False),
    Column("step_order", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", UTCDateTime),
    Column("completed_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("duration_ms", Integer),
    Column("output_preview", Text),
    Column("record_metadata", JSON(none_as_null=True)),
    Column("step_config", JSON(none_as_null=True)),
    Column("input_variables", JSON(none_as_null=True)),
    Column("resolved_prompt", Text),
    Column("model_used", String(255)),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("total_tokens", Integer),
    Column("estimated_cost", ExactCost),
    Column("error_message", Text),
    Column("retry_count", Integer, nullable=False, server_default="0"),
    CheckConstraint(f"status IN ({_STATUSES})", name="status"),
)

# Every read starts from one flow: each index leads with flow_id and ends with
# id, the tie-breaker of every sort, so a page never scans other flows' rows.
_SORT_COLUMNS = (
    "created_at",
    "started_at",
    "completed_at",
    "duration_ms",
    "step_order",
    "total_tokens",
    "estimated_cost",
)
for _column in _SORT_COLUMNS:
    Index(
        f"ix_step_results_flow_{_column}",
        step_results.c.flow_id,
        step_results.c[_column],
        step_results.c.id,
    )
for _column in ("record_id", "batch_execution_id"):
    Index(
        f"ix_step_results_flow_{_column}_created",
        step_results.c.flow_id,
        step_results.c[_column],
        step_results.c.created_at,
        step_results.c.id,
    )

# Statistics read every matching row of a flow. The status and step indexes also carry
# every column a measure reads (after id, so their order is unchanged), which lets the
# store answer statistics of a whole flow, a status or a step from the index alone,
# without visiting rows scattered through the table.
MEASURED_COLUMNS = (
    "status",
    "step_id",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "estimated_cost",
)
for _column in ("status", "step_id"):
    Index(
        f"ix_step_results_flow_{_column}_covering",
        step_results.c.flow_id,
        step_results.c[_column],
        step_results.c.created_at,
        step_results.c.id,
        *(step_results.c[measured] for measured in MEASURED_COLUMNS if measured != _column),
    )

# API keys issued by stepgraph. Only a hash of each key is kept: the key itself is
# shown once, when it is created.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Identifier, primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("organization_id", Identifier, nullable=False, index=True),
    Column("user_id", Identifier, nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("label", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)
