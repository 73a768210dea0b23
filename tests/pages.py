"""Ask for one page through either transport with REST-style parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.api import Api

TRANSPORTS = ("rest", "graphql")

PAGE_QUERY = """
query Page(
  $flowId: ID!, $recordId: String, $batchId: String, $status: StepStatus, $stepId: String,
  $from: DateTime, $to: DateTime, $sortBy: StepResultSort, $sortOrder: SortOrder,
  $limit: Int, $offset: Int
) {
  stepResults(
    flowId: $flowId, recordId: $recordId, batchId: $batchId, status: $status, stepId: $stepId,
    from: $from, to: $to, sortBy: $sortBy, sortOrder: $sortOrder, limit: $limit, offset: $offset
  ) {
    data {
      id userId organizationId batchExecutionId executionSessionId flowId flowVersionId
      recordId recordName stepId stepType stepName order status startedAt completedAt
      durationMs outputPreview createdAt recordMetadata stepConfig inputVariables
      resolvedPrompt modelUsed promptTokens completionTokens totalTokens estimatedCost
      errorMessage retryCount
    }
    pagination { limit offset returned hasMore }
  }
}
"""

_SORT_ENUM = {
    "createdAt": "CREATED_AT",
    "startedAt": "STARTED_AT",
    "completedAt": "COMPLETED_AT",
    "durationMs": "DURATION_MS",
    "order": "ORDER",
    "totalTokens": "TOTAL_TOKENS",
    "estimatedCost": "ESTIMATED_COST",
}


@dataclass
class Outcome:
    """A page, or the error that came instead, in transport-neutral terms."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    pagination: dict[str, Any] | None = None
    code: str | None = None
    argument: str | None = None
    status_code: int = 200

    @property
    def ids(self) -> list[str]:
        return [row["id"] for row in self.rows]


def graphql_variables(flow_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """REST parameters as GraphQL variables (enums upper-case, numbers as numbers)."""
    variables: dict[str, Any] = {"flowId": flow_id}
    for key, value in params.items():
        if key == "status":
            value = value.upper()
        elif key == "sortBy":
            value = _SORT_ENUM.get(value, value)
        elif key == "sortOrder":
            value = value.upper()
        elif key in {"limit", "offset"}:
            value = int(value)
        variables[key] = value
    return variables


async def fetch(api: Api, transport: str, flow_id: str, **params: Any) -> Outcome:
    """One page of ``flow_id`` through ``transport`` ("rest" or "graphql")."""
    if transport == "rest":
        response = await api.rest(flow_id, **params)
        body = response.json()
        if response.status_code != 200:
            error = body["error"]
            return Outcome(
                code=error["code"], argument=error.get("argument"), status_code=response.status_code
            )
        return Outcome(rows=body["data"], pagination=body["pagination"])
    body = await api.graphql(PAGE_QUERY, **graphql_variables(flow_id, params))
    if body.get("errors"):
        extensions = body["errors"][0]["extensions"]
        return Outcome(code=extensions["code"], argument=extensions.get("argument"))
    page = body["data"]["stepResults"]
    rows = [{**row, "status": row["status"].lower()} for row in page["data"]]
    return Outcome(rows=rows, pagination=page["pagination"])
