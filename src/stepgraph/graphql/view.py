"""The /graphql endpoint: Strawberry's ASGI view with stepgraph's context and GraphiQL."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from stepgraph.graphiql import graphiql_html
from stepgraph.graphql.context import Context
from stepgraph.store import reads

EXAMPLE_QUERY = """\
# Welcome to stepgraph: the step results of flow runs, as GraphQL.
#
# Run this query with Ctrl-Enter (or the play button). Ctrl-Space completes
# fields and arguments, and the Docs pane describes every one of them.
# Filter with recordId, batchId, status, stepId, from and to; order with
# sortBy and sortOrder; page with limit and offset, as in the REST twin:
#   GET /v1/flows/{flow_id}/step-results?status=failed&limit=5

query LatestStepResults {
  stepResults(flowId: "{flow_id}", sortBy: CREATED_AT, sortOrder: DESC, limit: 5) {
    data {
      id
      recordName
      stepName
      status
      durationMs
      totalTokens
      estimatedCost
      errorMessage
      createdAt
    }
    pagination {
      limit
      offset
      returned
      hasMore
    }
  }
}
"""


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view, with orjson and a context per request."""

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        state = request.state
        return Context(
            request=request,
            response=response,
            engine=state.engine,
            limits=state.limits,
            request_id=state.request_id,
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        async with request.state.engine.connect() as connection:
            flow_id = await reads.first_flow_id(connection)
        example = EXAMPLE_QUERY.replace("{flow_id}", flow_id or "your-flow-id")
        return HTMLResponse(graphiql_html(example_query=example))


def graphql_app(schema: Any, *, graphiql: bool) -> GraphQLView:
    """The ASGI app mounted at /graphql."""
    return GraphQLView(schema, graphql_ide="graphiql" if graphiql else None)
