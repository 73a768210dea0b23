"""The compiled path for list pages: when it answers, and that it answers as the executor would.

Every test sends the same request to two apps over one store: the gateway as served
(document cache and compiled path) and a reference whose /graphql is Strawberry's
executor alone. Responses must be byte-identical: status, headers that matter and body.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import Engine, Pool, event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from stepgraph.app import create_app
from stepgraph.auth.api_keys import issue_api_key
from stepgraph.auth.viewer import READ_STEP_RESULTS, WRITE_STEP_RESULTS
from stepgraph.domain import STEP_RESULT_FIELDS
from stepgraph.graphql.protocol import QueryLimits
from stepgraph.graphql.schema import build_schema
from stepgraph.graphql.view import GraphQLView, graphql_app
from stepgraph.settings import Settings
from stepgraph.store import direct
from tests.conftest import insert
from tests.factories import make_step_result

MAIN_FLOW = "flow_main"
OTHER_ORGANIZATION_FLOW = "flow_elsewhere"
ALL_FIELDS = " ".join(STEP_RESULT_FIELDS)
PAGE = f"""query Page($flowId: ID!, $limit: Int, $offset: Int) {{
  stepResults(flowId: $flowId, limit: $limit, offset: $offset) {{
    data {{ {ALL_FIELDS} }}
    pagination {{ limit offset returned hasMore }}
  }}
}}"""


def main_rows() -> list[dict[str, Any]]:
    """Rows that reach every renderer: nulls, JSON of every kind, costs, instants, statuses."""
    statuses = ["completed", "failed", "running", "pending", "skipped", "cancelled"]
    json_values: list[Any] = [
        None,
        {},
        {"tier": "gold", "tags": ["a", "ü", "\u2028"], "nested": {"x": [1, 2.5, None, True]}},
        {"big": 2**63 + 5, "negative": -(2**63), "float": 1e300, "tiny": 5e-324},
        {"unicode": "日本語 \U0001f600", "quote": 'say "hi"\n', "long": "x" * 300},
        {"digits": "1234567890123456789012", "n": 18446744073709551615},
    ]
    return [
        make_step_result(
            id=f"sr_{i:02d}",
            flowId=MAIN_FLOW,
            status=statuses[i % 6],
            recordId=[None, "rec_1", "rec_2"][i % 3],
            recordName=[None, "Ünïcode – name", "plain"][i % 3],
            batchExecutionId=[None, "batch_1"][i % 2],
            order=i % 4,
            createdAt=f"2024-06-{10 + i // 3:02d}T0{i % 10}:00:00{['', '.5', '.000001'][i % 3]}Z",
            startedAt=None if i % 5 == 0 else f"2024-06-{10 + i // 3:02d}T07:00:0{i % 10}+02:00",
            completedAt=None if i % 4 == 0 else f"0999-01-0{1 + i % 9}T00:00:00Z",
            durationMs=None if i % 4 == 1 else [0, 1, 2**31 - 1][i % 3],
            totalTokens=None if i % 3 == 0 else i * 100,
            promptTokens=None if i % 2 else i,
            estimatedCost=[None, "0.0045", "1.5", "0", "12345678.1234567890"][i % 5],
            recordMetadata=json_values[i % 6],
            stepConfig=json_values[(i + 2) % 6],
            inputVariables=json_values[(i + 4) % 6],
            errorMessage=None if i % 6 != 1 else "boom",
            retryCount=i % 3,
        )
        for i in range(18)
    ]


# Flows holding values the store never writes, each with whether the compiled path may
# answer it: where the executor reports an error (or renders otherwise), it must not.
ODD_FLOWS = {
    "flow_odd_int": ("UPDATE step_results SET duration_ms = 3000000000", False),
    "flow_odd_text": ("UPDATE step_results SET step_order = 'abc'", False),
    "flow_odd_blob": ("UPDATE step_results SET record_name = X'00FF'", False),
    "flow_odd_instant": ("UPDATE step_results SET completed_at = 'not a time'", False),
    "flow_odd_status": ("UPDATE step_results SET status = 'finished'", False),
    "flow_odd_offset": (
        "UPDATE step_results SET started_at = '2024-06-15 12:00:00+02:00'",
        True,
    ),
    "flow_odd_json": ("UPDATE step_results SET step_config = '[NaN, 1e400, -0.0]'", True),
    # Beyond 64 bits: json.loads keeps it and orjson cannot send it, on either path.
    "flow_odd_bigint": (
        """UPDATE step_results SET input_variables = '{"n": 1234567890123456789012}'""",
        True,
    ),
}


async def seed(engine: AsyncEngine) -> None:
    """The store every test here reads: one rich flow, another organization's, odd flows."""
    rows = main_rows()
    rows.append(
        make_step_result(id="sr_other", flowId=OTHER_ORGANIZATION_FLOW, organizationId="org_2")
    )
    odd = engine.dialect.name == "sqlite"
    if odd:
        rows += [
            make_step_result(id=f"{flow}_{i}", flowId=flow) for flow in ODD_FLOWS for i in (1, 2)
        ]
    await insert(engine, rows)
    if odd:
        async with engine.begin() as connection:
            # The status CHECK constraint would refuse the odd status otherwise.
            await connection.execute(text("PRAGMA ignore_check_constraints = ON"))
            for flow, (statement, _) in ODD_FLOWS.items():
                await connection.execute(text(f"{statement} WHERE flow_id = :flow"), {"flow": flow})


def graphql_view(app: Starlette) -> GraphQLView:
    """The /graphql endpoint of an app built by ``create_app``."""
    for route in app.router.routes:
        if isinstance(route, Route) and isinstance(route.app, GraphQLView):
            return route.app
    raise LookupError("no GraphQL route")


def executor_only(app: Starlette, settings: Settings) -> None:
    """Serve /graphql with Strawberry's executor alone: no document cache, no compiled path."""
    limits = QueryLimits(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_query_aliases,
        max_tokens=settings.max_query_tokens,
        max_batch=settings.max_batch,
    )
    for route in app.router.routes:
        if isinstance(route, Route) and isinstance(route.app, GraphQLView):
            schema = build_schema(limits, document_cache_size=0)
            route.app = graphql_app(schema, graphiql=settings.graphiql, fast_path=False)


@dataclass
class Reply:
    """What a client sees of a response."""

    status: int
    content_type: str | None
    authenticate: str | None
    allow: str | None
    body: bytes


@dataclass
class Apps:
    """The gateway as served and its executor-only reference, over the same store."""

    served: httpx.AsyncClient
    reference: httpx.AsyncClient
    served_asgi: ASGIApp
    view: GraphQLView
    engine: AsyncEngine
    keys: dict[str, str]

    async def both(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        operation_name: str | None = None,
        key: str | None = "reader",
        method: str = "POST",
        accept: str | None = "application/graphql-response+json",
        request_id: str = "req-1",
    ) -> tuple[Reply, Reply]:
        """The same request to both apps: (served, reference)."""
        headers = {"X-Request-ID": request_id}
        if accept is not None:
            headers["Accept"] = accept
        if key is not None:
            headers["Authorization"] = f"Bearer {self.keys[key]}"
        body: dict[str, Any] = {"query": query}
        params = {"query": query}
        if variables is not None:
            body["variables"] = variables
            params["variables"] = orjson.dumps(variables).decode()
        if operation_name is not None:
            body["operationName"] = params["operationName"] = operation_name
        replies = []
        for client in (self.served, self.reference):
            if method == "GET":
                response = await client.get("/graphql", params=params, headers=headers)
            else:
                response = await client.post("/graphql", json=body, headers=headers)
            replies.append(
                Reply(
                    response.status_code,
                    response.headers.get("content-type"),
                    response.headers.get("www-authenticate"),
                    response.headers.get("allow"),
                    response.content,
                )
            )
        return replies[0], replies[1]

    async def served_statements(self, query: str, variables: dict[str, Any]) -> list[str]:
        """The SQL statements the served app runs for one POST."""
        statements: list[str] = []

        def record(*args: Any) -> None:
            statements.append(args[2])

        event.listen(Engine, "before_cursor_execute", record)
        direct.statement_hooks.append(record_direct := lambda sql, _: statements.append(sql))
        try:
            headers = {"Authorization": f"Bearer {self.keys['reader']}"}
            body = {"query": query, "variables": variables}
            await self.served.post("/graphql", json=body, headers=headers)
        finally:
            event.remove(Engine, "before_cursor_execute", record)
            direct.statement_hooks.remove(record_direct)
        return statements

    async def served_checkouts(self, body: bytes, key: str | None = "reader") -> int:
        """How many times the served app checks a connection out of a pool for one POST."""
        checkouts = 0

        def count(*_: Any) -> None:
            nonlocal checkouts
            checkouts += 1

        event.listen(Pool, "checkout", count)
        try:
            headers = {"Content-Type": "application/json"}
            if key is not None:
                headers["Authorization"] = f"Bearer {self.keys[key]}"
            await self.served.post("/graphql", content=body, headers=headers)
        finally:
            event.remove(Pool, "checkout", count)
        return checkouts

    async def compare(
        self, query: str, variables: dict[str, Any] | None = None, **kw: Any
    ) -> Reply:
        """Send twice to the served app (the first one fills the document cache) and once to
        the reference; all three must agree. Returns the reply."""
        first, reference = await self.both(query, variables, **kw)
        second, _ = await self.both(query, variables, **kw)
        assert comparable(first) == comparable(reference)
        assert comparable(second) == comparable(reference)
        return second


def comparable(reply: Reply) -> Reply:
    """The reply itself, except that errors of several fields are put in one order.

    The executor resolves root fields concurrently and lists their errors as they happen:
    with two failing pages the order varies from run to run, compiled path or not. Every
    other byte is compared as sent.
    """
    try:
        body = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        return reply
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or len(errors) < 2:
        return reply
    body["errors"] = sorted(errors, key=lambda error: orjson.dumps(error))
    return replace(reply, body=orjson.dumps(body))


async def _issue(engine: AsyncEngine, organization_id: str, scopes: Sequence[str]) -> str:
    async with engine.begin() as connection:
        issued = await issue_api_key(
            connection, organization_id=organization_id, user_id="user_test", scopes=scopes
        )
    return issued.key


@pytest.fixture
async def apps(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Apps]:
    await seed(engine)
    served_app = create_app(settings)
    reference_app = create_app(settings)
    executor_only(reference_app, settings)
    keys = {
        "reader": await _issue(engine, "org_1", [READ_STEP_RESULTS]),
        "writer": await _issue(engine, "org_1", [WRITE_STEP_RESULTS]),
        "stranger": await _issue(engine, "org_2", [READ_STEP_RESULTS]),
        "unknown": "sgk_aaaaaaaaaaaa_" + "a" * 43,
    }
    async with AsyncExitStack() as stack:
        clients = []
        managed: list[ASGIApp] = []
        for app in (served_app, reference_app):
            manager = await stack.enter_async_context(LifespanManager(app))
            managed.append(manager.app)
            transport = httpx.ASGITransport(app=manager.app)
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://stepgraph.test")
                )
            )
        yield Apps(clients[0], clients[1], managed[0], graphql_view(served_app), engine, keys)


def page_variables(flow_id: str = MAIN_FLOW, **extra: Any) -> dict[str, Any]:
    return {"flowId": flow_id, **extra}


# --- when the compiled path answers ------------------------------------------------------------


async def test_a_repeated_page_query_is_answered_by_the_compiled_path(apps: Apps) -> None:
    stats = apps.view.fast_path.stats  # type: ignore[union-attr]
    reply = await apps.compare(PAGE, page_variables(limit=7, offset=3))
    assert (stats.executor, stats.compiled) == (1, 1)
    page = orjson.loads(reply.body)["data"]["stepResults"]
    assert page["pagination"] == {"limit": 7, "offset": 3, "returned": 7, "hasMore": True}


async def test_the_first_request_of_a_text_runs_the_executor(apps: Apps) -> None:
    stats = apps.view.fast_path.stats  # type: ignore[union-attr]
    await apps.both(PAGE, page_variables())
    assert (stats.executor, stats.compiled) == (1, 0)


def _page_of(selection: str, fragments: str = "") -> str:
    return f'{{ stepResults(flowId: "{MAIN_FLOW}", limit: 3) {{ {selection} }} }} {fragments}'


@pytest.mark.parametrize(
    ("selection", "fragments"),
    [
        ("pagination { limit }", ""),
        (
            "__typename data { __typename a: id ...F } pagination { __typename returned }",
            "fragment F on StepResult { b: status createdAt }",
        ),
        ("data { id ... on StepResult { id status } ... { order: retryCount } }", ""),
        ("data { id @skip(if: true) status @include(if: false) order }", ""),
    ],
)
async def test_plain_selections_are_compiled(apps: Apps, selection: str, fragments: str) -> None:
    await apps.compare(_page_of(selection, fragments))
    assert apps.view.fast_path.stats.compiled == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("selection", ["data { id flow { id } }", "data { id } totalCount"])
async def test_fields_with_resolvers_are_left_to_the_executor(apps: Apps, selection: str) -> None:
    await apps.compare(_page_of(selection))
    assert apps.view.fast_path.stats.compiled == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "query",
    [
        f'{{ stepResult(id: "sr_01") {{ id }} stepResults(flowId: "{MAIN_FLOW}") {{ pagination '
        "{ limit } } }",
        f'{{ flow(id: "{MAIN_FLOW}") {{ stepResults(limit: 2) {{ data {{ id }} }} }} }}',
        "{ __schema { queryType { name } } }",
    ],
)
async def test_other_root_fields_are_left_to_the_executor(apps: Apps, query: str) -> None:
    await apps.compare(query)
    assert apps.view.fast_path.stats.compiled == 0  # type: ignore[union-attr]


# --- every semantic of the executor ------------------------------------------------------------


@pytest.mark.parametrize(("key", "status"), [(None, 401), ("unknown", 401), ("writer", 403)])
async def test_refused_callers_get_the_executors_refusal(
    apps: Apps, key: str | None, status: int
) -> None:
    await apps.compare(PAGE, page_variables())  # the text is cached and compiled
    reply = await apps.compare(PAGE, page_variables(), key=key)
    assert reply.status == status
    assert apps.view.fast_path.stats.compiled == 1  # type: ignore[union-attr]


async def test_the_key_is_checked_on_the_connection_the_page_is_read_with(apps: Apps) -> None:
    await apps.compare(PAGE, page_variables())
    body = orjson.dumps({"query": PAGE, "variables": page_variables()})
    assert await apps.served_checkouts(body) == 1
    assert apps.view.fast_path.stats.compiled == 2  # type: ignore[union-attr]
    # Refused callers and the executor check the key on a connection of its own, as before.
    assert await apps.served_checkouts(body, key="writer") == 1
    assert await apps.served_checkouts(body, key=None) == 0
    with_resolver = orjson.dumps({"query": _page_of("data { id } totalCount")})
    assert await apps.served_checkouts(with_resolver) >= 2


@pytest.mark.parametrize(
    "body", [b"{not json", b'{"query": 1}', b'{"query": "{ __typename"}', b'{"variables": {}}']
)
async def test_a_request_refused_before_execution_reads_nothing(apps: Apps, body: bytes) -> None:
    assert await apps.served_checkouts(body) == 0


@pytest.mark.parametrize("flow_id", ["flow_missing", OTHER_ORGANIZATION_FLOW, MAIN_FLOW.upper()])
async def test_a_flow_the_caller_cannot_see_is_not_found_from_one_read(
    apps: Apps, flow_id: str
) -> None:
    await apps.compare(PAGE, page_variables())
    reply = await apps.compare(PAGE, page_variables(flow_id))
    error = orjson.loads(reply.body)["errors"][0]
    assert (error["extensions"], error["path"]) == ({"code": "NOT_FOUND"}, ["stepResults"])
    statements = await apps.served_statements(PAGE, page_variables(flow_id))
    # The executor reports the failure the compiled path met instead of reading again.
    assert sum("FROM step_results" in statement for statement in statements) == 1
    assert apps.view.fast_path.stats.replayed_failures == 3  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("variables", "argument"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"offset": -1}, "offset"),
        ({"limit": "ten"}, "limit"),
    ],
)
async def test_invalid_arguments_are_the_executors_bad_user_input(
    apps: Apps, variables: dict[str, Any], argument: str
) -> None:
    await apps.compare(PAGE, page_variables())
    reply = await apps.compare(PAGE, page_variables(**variables))
    assert orjson.loads(reply.body)["errors"][0]["extensions"]["argument"] == argument


@pytest.mark.parametrize("accept", [None, "application/json", "application/graphql-response+json"])
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_media_types_and_methods_are_the_executors(
    apps: Apps, accept: str | None, method: str
) -> None:
    reply = await apps.compare(PAGE, page_variables(limit=2), accept=accept, method=method)
    assert reply.status == 200
    assert apps.view.fast_path.stats.compiled == 1  # type: ignore[union-attr]


async def test_a_store_failure_is_masked_with_the_request_id(apps: Apps) -> None:
    await apps.compare(PAGE, page_variables())
    async with apps.engine.begin() as connection:
        await connection.execute(text("ALTER TABLE step_results RENAME TO gone"))
    try:
        reply = await apps.compare(PAGE, page_variables(), request_id="trace-7")
    finally:
        async with apps.engine.begin() as connection:
            await connection.execute(text("ALTER TABLE gone RENAME TO step_results"))
    error = orjson.loads(reply.body)["errors"][0]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "trace-7"}


@pytest.mark.parametrize("flow_id", sorted(ODD_FLOWS))
async def test_rows_the_store_never_writes_are_answered_as_the_executor_would(
    apps: Apps, flow_id: str
) -> None:
    if apps.engine.dialect.name != "sqlite":
        pytest.skip("odd stored values are written through SQLite's dynamic typing")
    await apps.compare(PAGE, page_variables(flow_id))
    compiled = apps.view.fast_path.stats.compiled  # type: ignore[union-attr]
    assert compiled == int(ODD_FLOWS[flow_id][1])


async def test_operation_selection_and_several_pages_in_one_document(apps: Apps) -> None:
    query = f"""
      query Two {{
        __typename
        first: stepResults(flowId: "{MAIN_FLOW}", limit: 2) {{ data {{ id }} }}
        later: stepResults(flowId: "{MAIN_FLOW}", limit: 2, offset: 2, sortOrder: ASC) {{
          pagination {{ offset }} data {{ status }}
        }}
      }}
      query Other {{ __typename }}
    """
    await apps.compare(query, operation_name="Two")
    await apps.compare(query)  # several operations and no name: the executor refuses it
    assert apps.view.fast_path.stats.compiled == 1  # type: ignore[union-attr]


async def test_a_client_that_leaves_before_its_body_arrives_gets_no_answer(
    apps: Apps, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {apps.keys['reader']}".encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("stepgraph.test", 80),
    }
    await apps.served_asgi(scope, receive, send)
    assert sent == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
