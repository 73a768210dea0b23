"""Ask for one cursor page (``stepResultsConnection``) with REST-style filter parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.api import Api
from tests.pages import graphql_variables

_VARIABLES = """
  $flowId: ID!, $recordId: String, $batchId: String, $status: StepStatus, $stepId: String,
  $from: DateTime, $to: DateTime, $sortBy: StepResultSort, $sortOrder: SortOrder,
  $first: Int, $after: String, $last: Int, $before: String, $withTotal: Boolean = false
"""
_ARGUMENTS = """
    recordId: $recordId, batchId: $batchId, status: $status, stepId: $stepId,
    from: $from, to: $to, sortBy: $sortBy, sortOrder: $sortOrder,
    first: $first, after: $after, last: $last, before: $before
"""
_SELECTION = """{
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    totalCount @include(if: $withTotal)
  }"""

ROOT_QUERY = f"""
query Connection({_VARIABLES}) {{
  stepResultsConnection(flowId: $flowId, {_ARGUMENTS}) {_SELECTION}
}}
"""
FLOW_QUERY = f"""
query FlowConnection({_VARIABLES}) {{
  flow(id: $flowId) {{ stepResultsConnection({_ARGUMENTS}) {_SELECTION} }}
}}
"""


@dataclass
class CursorPage:
    """One page of the cursor connection, flattened."""

    ids: list[str]
    cursors: list[str]
    page_info: dict[str, Any]
    total_count: int | None


def variables(flow_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """Filter and sort parameters in REST spelling, paging arguments as GraphQL has them."""
    paging = {
        k: params[k] for k in ("first", "after", "last", "before", "withTotal") if k in params
    }
    rest = {k: v for k, v in params.items() if k not in paging}
    return {**graphql_variables(flow_id, rest), **paging}


async def request(api: Api, flow_id: str, *, via_flow: bool = False, **params: Any) -> Any:
    """The response body of one cursor page, through the root field or through ``Flow``."""
    return await api.graphql(FLOW_QUERY if via_flow else ROOT_QUERY, **variables(flow_id, params))


async def fetch_page(
    api: Api, flow_id: str, *, via_flow: bool = False, **params: Any
) -> CursorPage:
    """One cursor page; fails the test on any error."""
    body = await request(api, flow_id, via_flow=via_flow, **params)
    assert not body.get("errors"), body["errors"]
    data = body["data"]
    connection = (
        data["flow"]["stepResultsConnection"] if via_flow else data["stepResultsConnection"]
    )
    edges = connection["edges"]
    return CursorPage(
        ids=[edge["node"]["id"] for edge in edges],
        cursors=[edge["cursor"] for edge in edges],
        page_info=connection["pageInfo"],
        total_count=connection.get("totalCount"),
    )


async def fetch_error(api: Api, flow_id: str, **params: Any) -> tuple[str, str | None]:
    """The code and argument of the error a cursor page request gets (it must get one)."""
    body = await request(api, flow_id, **params)
    assert body.get("errors"), body
    assert body["data"] == {"stepResultsConnection": None}
    extensions = body["errors"][0]["extensions"]
    return extensions["code"], extensions.get("argument")
