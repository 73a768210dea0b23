"""The vocabulary of the step-results contract, shared by every layer."""

from __future__ import annotations

import enum


class StepStatus(enum.Enum):
    """Where one step of one flow run stands."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class SortField(enum.Enum):
    """The columns a page of step results can be ordered by (REST spelling as value)."""

    CREATED_AT = "createdAt"
    STARTED_AT = "startedAt"
    COMPLETED_AT = "completedAt"
    DURATION_MS = "durationMs"
    ORDER = "order"
    TOTAL_TOKENS = "totalTokens"
    ESTIMATED_COST = "estimatedCost"


class SortOrder(enum.Enum):
    """Direction of a sort; ties are broken by id in the same direction."""

    ASC = "asc"
    DESC = "desc"


# Field names of a step result in the order the REST payload shows them.
STEP_RESULT_FIELDS: tuple[str, ...] = (
    "id",
    "userId",
    "organizationId",
    "batchExecutionId",
    "executionSessionId",
    "flowId",
    "flowVersionId",
    "recordId",
    "recordName",
    "stepId",
    "stepType",
    "stepName",
    "order",
    "status",
    "startedAt",
    "completedAt",
    "durationMs",
    "outputPreview",
    "createdAt",
    "recordMetadata",
    "stepConfig",
    "inputVariables",
    "resolvedPrompt",
    "modelUsed",
    "promptTokens",
    "completionTokens",
    "totalTokens",
    "estimatedCost",
    "errorMessage",
    "retryCount",
)
