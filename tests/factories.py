"""Data factories: contract-shaped step results with sensible defaults."""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count(1)


def make_step_result(**overrides: Any) -> dict[str, Any]:
    """A valid step result in the contract's JSON shape; ``overrides`` replace fields."""
    n = next(_ids)
    row: dict[str, Any] = {
        "id": f"sr_{n:06d}",
        "userId": "user_1",
        "organizationId": "org_1",
        "batchExecutionId": "batch_1",
        "executionSessionId": "session_1",
        "flowId": "flow_1",
        "flowVersionId": "v1",
        "recordId": "record_1",
        "recordName": "Customer Onboarding - John Doe",
        "stepId": "step_1",
        "stepType": "api-call",
        "stepName": "Validate Customer Data",
        "order": 1,
        "status": "completed",
        "startedAt": "2024-06-15T10:15:30Z",
        "completedAt": "2024-06-15T10:15:45Z",
        "durationMs": 15000,
        "outputPreview": '{"valid":true}',
        "createdAt": f"2024-06-15T10:{n % 60:02d}:{n * 7 % 60:02d}Z",
        "recordMetadata": None,
        "stepConfig": None,
        "inputVariables": None,
        "resolvedPrompt": None,
        "modelUsed": None,
        "promptTokens": None,
        "completionTokens": None,
        "totalTokens": None,
        "estimatedCost": None,
        "errorMessage": None,
        "retryCount": 0,
    }
    row.update(overrides)
    return row
