"""The /graphql endpoint: Strawberry's ASGI view with stepgraph's context and GraphiQL."""

from __future__ import annotations

from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter
from cross_web import HTTPException as StrawberryHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult

from stepgraph.graphiql import graphiql_html
from stepgraph.graphql.context import Context
from stepgraph.graphql.fastpath import FastPath
from stepgraph.graphql.protocol import GRAPHQL_RESPONSE, JSON, negotiate_media_type
from stepgraph.store import reads
from stepgraph.store.engine import reading

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


# Where the negotiated response type travels from the request to the response.
_MEDIA_TYPE = "stepgraph_media_type"


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view, with orjson, a context per request and GraphQL over HTTP rules.

    Clients that accept ``application/graphql-response+json`` get it, with 400
    and no ``data`` for requests that fail before execution (parse, validation,
    variables); ``application/json`` clients get the legacy 200. HTTP-level
    refusals are JSON too, with an ``extensions.code``.

    Operations are offered to the compiled path first (``fast_path``); whatever it
    does not answer runs through Strawberry's executor unchanged.
    """

    fast_path: FastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await (
                self._post(request) if request.method == "POST" else self.run(request)
            )
        except StrawberryHTTPException as exc:
            response = self._refusal(request, exc.status_code, exc.reason)
        except ClientDisconnect:
            # The client left before its body arrived: nobody to answer, nothing went wrong.
            return
        await response(scope, receive, send)

    async def _post(self, request: Request) -> Response:
        """Strawberry's ``run`` for a POST, less the steps only other requests take.

        A POST is an allowed method and never asks for the IDE; one operation over plain
        HTTP is neither a batch nor a stream, and is answered here step for step as
        ``run`` answers it. Batches and streams are left to ``run``.
        """
        request_adapter = self.request_adapter_class(request)
        request_data = await self.parse_http_body(request_adapter)
        if isinstance(request_data, list) or request_data.protocol != "http":
            return await self.run(request)
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, response=sub_response)
        # No root value: the view's is None (``get_root_value`` is not overridden).
        result = await self.execute_single(
            request, request_adapter, sub_response, context, None, request_data
        )
        response_data = await self.process_result(request, result)
        if result.errors:
            self._handle_errors(result.errors, response_data)
        return self.create_response(response_data, sub_response)

    def _refusal(self, request: Request, status_code: int, message: str) -> Response:
        media_type = negotiate_media_type(request.headers.get("accept")) or JSON
        if status_code == 400 and message.startswith("mutations are not allowed"):
            status_code = 405
        code = {405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE", 415: "UNSUPPORTED_MEDIA_TYPE"}
        body = {
            "errors": [
                {"message": message, "extensions": {"code": code.get(status_code, "BAD_REQUEST")}}
            ]
        }
        response = Response(orjson.dumps(body), status_code=status_code, media_type=media_type)
        if status_code == 405:
            response.headers["Allow"] = "POST" if request.method == "GET" else "GET, POST"
        return response

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        async def executor() -> ExecutionResult:
            return await super(GraphQLView, self).execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )

        fast_path = self.fast_path
        refused_get = request_adapter.method == "GET" and not self.allow_queries_via_get
        if fast_path is None or request_data.protocol != "http" or refused_get:
            return await executor()
        return await fast_path.execute(
            query=request_data.query,
            variables=request_data.variables,
            operation_name=request_data.operation_name,
            context=context,
            executor=executor,
        )

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        # orjson is strict about UTF-8: an invalid byte is a decode error (400), not a 500.
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise StrawberryHTTPException(
                400, f"the request body is not valid JSON: {exc}"
            ) from exc

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        media_type = negotiate_media_type(request.headers.get("accept"))
        if media_type is None:
            raise StrawberryHTTPException(
                406, f"responses are {GRAPHQL_RESPONSE} or {JSON}; the Accept header allows neither"
            )
        if request.method == "POST":
            content_type = (request.content_type or "").split(";")[0].strip().lower()
            if content_type != JSON:
                # Form and text bodies are what cross-site forms can send: refuse them.
                raise StrawberryHTTPException(
                    415, f"POST bodies must be {JSON}, got {content_type or 'no Content-Type'}"
                )
            body = self.decode_json(await request.get_body())
            if isinstance(body, dict):
                # One operation: read here, from the body decoded once, as Strawberry would.
                return self._request_data(body, request)
            if not isinstance(body, list):
                raise StrawberryHTTPException(
                    400, "the request body must be a JSON object with a `query`"
                )
        data = await super().parse_http_body(request)
        for item in data if isinstance(data, list) else [data]:
            if not isinstance(item.operation_name, str | None):
                raise StrawberryHTTPException(400, "`operationName` must be a string or null")
        return data

    def _request_data(
        self, body: dict[str, Any], request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData:
        """A POSTed operation, checked as Strawberry's ``parse_http_body`` checks one."""
        query = _member(body, "query", str, "a string")
        variables = _member(body, "variables", dict, "an object")
        extensions = _member(body, "extensions", dict, "an object")
        operation_name = body.get("operationName")
        if not isinstance(operation_name, str | None):
            raise StrawberryHTTPException(400, "`operationName` must be a string or null")
        # No stream transport is configured unless the view offers one: no Accept to scan.
        transport = (
            self._get_stream_transport_from_headers(request.headers)
            if self._stream_transport_map
            else None
        )
        return GraphQLRequestData(
            query=query,
            variables=variables,
            operation_name=operation_name,
            extensions=extensions,
            protocol=transport.protocol if transport else "http",
        )

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        response = await super().get_sub_response(request)
        media_type = negotiate_media_type(request.headers.get("accept")) or JSON
        request.state.sub_response = response
        request.state.media_type = media_type
        setattr(response, _MEDIA_TYPE, media_type)
        return response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        request_error = result.data is None and all(e.path is None for e in result.errors or [])
        if request_error and request.state.media_type == GRAPHQL_RESPONSE:
            processed.pop("data", None)
            status = request.state.sub_response.status_code
            if not status:
                request.state.sub_response.status_code = 400
        return processed

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        # Strawberry's response, with the negotiated media type in one step.
        media_type = getattr(sub_response, _MEDIA_TYPE, JSON)
        response = Response(
            self.encode_json(response_data),
            status_code=sub_response.status_code or 200,
            media_type=f"{media_type}; charset=utf-8",
        )
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        return response

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        state = request.state
        context = Context(
            request=request,
            response=response,
            engine=state.engine,
            limits=state.limits,
            request_id=state.request_id,
            authenticator=state.authenticator,
            authorization=request.headers.get("authorization"),
        )
        if request.scope["type"] != "http":
            await context.authenticate()
        # Over HTTP the token is checked once the operation is known to be valid: by the
        # executor (graphql.auth.RequireViewer), or by the compiled path on the connection
        # it reads the page with. A request refused before execution reads nothing.
        return context

    async def render_graphql_ide(self, request: Request) -> Response:
        # The page is public: only in demo mode, where the demo key is handed out
        # anyway, does it name a real flow (one the demo key may read).
        demo_key = request.state.settings.demo_key
        flow_id = None
        headers = None
        if demo_key:
            viewer = await request.state.authenticator.authenticate(f"Bearer {demo_key}")
            async with reading(request.state.engine) as connection:
                flow_id = await reads.largest_flow_id(
                    connection, organization_id=viewer.organization_id
                )
            headers = {"Authorization": f"Bearer {demo_key}"}
        example = EXAMPLE_QUERY.replace("{flow_id}", flow_id or "your-flow-id")
        return HTMLResponse(graphiql_html(example_query=example, default_headers=headers))


def _member(body: dict[str, Any], name: str, kind: type, what: str) -> Any:
    """A member of a posted operation, of ``kind`` or null; refused in Strawberry's words."""
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise StrawberryHTTPException(
            400, f"The GraphQL operation's `{name}` must be {what} or null, if provided."
        )
    return value


def graphql_app(schema: Any, *, graphiql: bool, fast_path: bool = True) -> GraphQLView:
    """The ASGI app mounted at /graphql; ``fast_path`` needs the schema's document cache."""
    view = GraphQLView(schema, graphql_ide="graphiql" if graphiql else None)
    documents = getattr(schema, "documents", None)
    if fast_path and documents is not None:
        view.fast_path = FastPath(schema, documents)
    return view
