"""Abusive requests are refused before they cost anything: a clear error, a code, a 4xx.

A stock server accepted every document here; some cost seconds of CPU (10,000 aliases of a
store field took 6–9 s), some crashed validation. They are sent the way modern clients send
them, accepting ``application/graphql-response+json``, under which a request error is a 400
without ``data``; ``application/json`` clients get the legacy 200 that the GraphQL-over-HTTP
specification prescribes for that media type.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import httpx
import orjson
import pytest
from graphql import get_introspection_query
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.settings import Settings
from stepgraph.store import reads
from stepgraph.store.engine import StatementTimeout, create_engine
from tests.api import Api, running
from tests.conftest import insert
from tests.factories import make_step_result

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
TOKEN_LIMIT = "Document contains more than 5000 tokens"
PAGE_FIELD = 'stepResults(flowId: "flow_1", limit: 1) { pagination { returned } }'
PAGE = f"{{ {PAGE_FIELD} }}"

T = TypeVar("T")


# Documents --------------------------------------------------------------------------------


def nested(depth: int) -> str:
    """A valid query ``depth`` fields deep: flow → stepResults → data → flow → ..."""
    fields = [("flow", "stepResults", "data")[level % 3] for level in range(depth - 1)]
    selection = "__typename"
    for level, field in reversed(list(enumerate(fields))):
        arguments = '(id: "flow_1")' if level == 0 else ""
        selection = f"{field}{arguments} {{ {selection} }}"
    return f"{{ {selection} }}"


def aliases(count: int, field: str = PAGE_FIELD) -> str:
    """``count`` aliases of ``field`` (by default one that reads the store, 66 bytes each)."""
    return "{ " + " ".join(f"a{i}: {field}" for i in range(count)) + " }"


def tokens(count: int) -> str:
    """About ``count`` tokens, 11 bytes each."""
    return "{" + " __typename" * (count - 2) + "}"


def directives(count: int) -> str:
    return "{ __typename" + " @include(if: true)" * count + " }"


def chained_fragments(count: int) -> str:
    """Fragments each spreading the next: validation recurses once per fragment."""
    chain = [f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(count - 1)]
    return "\n".join(["{ ...F0 }", *chain, f"fragment F{count - 1} on Query {{ __typename }}"])


def fanned_out_fragments(levels: int) -> str:
    """Fragments each spreading the next twice: 2**levels selections in under 200 tokens.

    Unprotected, 20 levels cost seconds and every further level doubles that.
    """
    fan = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels - 1)]
    return "\n".join(["{ ...F0 }", *fan, f"fragment F{levels - 1} on Query {{ __typename }}"])


# Helpers ----------------------------------------------------------------------------------


async def post(api: Api, body: object, *, accept: str = GRAPHQL_RESPONSE) -> httpx.Response:
    """POST a JSON body (or raw bytes) to /graphql."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return await api.client.post(
        "/graphql", content=content, headers={"Accept": accept, "Content-Type": JSON}
    )


def refusal(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    """The single error of a request refused before execution: ``status``, no ``data``."""
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    body = response.json()
    assert "data" not in body, body
    [error] = body["errors"]
    assert error["extensions"]["code"], error
    return dict(error)


# Documents beyond the limits ------------------------------------------------------------------

ABUSIVE = [
    pytest.param(
        lambda: nested(40),
        {},
        "GRAPHQL_VALIDATION",
        "exceeds maximum operation depth of 12",
        id="depth 40",
    ),
    pytest.param(
        lambda: aliases(10_000), {}, "GRAPHQL_PARSE_FAILED", TOKEN_LIMIT, id="10,000 aliases"
    ),
    pytest.param(
        # Validating 170,000 tokens of store fields takes seconds; the limiter counts alike.
        lambda: aliases(10_000, field="__typename"),
        {"max_query_tokens": 1_000_000},
        "GRAPHQL_VALIDATION",
        "10000 aliases found. Allowed: 30",
        id="10,000 aliases within a raised token limit",
    ),
    pytest.param(
        lambda: tokens(470_000),
        {"max_body_bytes": 8_000_000},
        "GRAPHQL_PARSE_FAILED",
        TOKEN_LIMIT,
        id="470,000 tokens within a raised body limit",
    ),
    pytest.param(
        lambda: directives(10_000),
        {},
        "GRAPHQL_PARSE_FAILED",
        TOKEN_LIMIT,
        id="10,000 directives",
    ),
    pytest.param(
        lambda: chained_fragments(5_000),
        {},
        "GRAPHQL_PARSE_FAILED",
        TOKEN_LIMIT,
        id="5,000 chained fragments",
    ),
    pytest.param(
        lambda: chained_fragments(5_000),
        {"max_query_tokens": 1_000_000},
        "GRAPHQL_VALIDATION",
        "the document nests 5001 levels deep counting fragments; at most 100 are allowed",
        id="5,000 chained fragments within a raised token limit",
    ),
    pytest.param(
        lambda: chained_fragments(300),
        {},
        "GRAPHQL_VALIDATION",
        "the document nests 301 levels deep counting fragments; at most 100 are allowed",
        id="300 chained fragments within the token limit",
    ),
    pytest.param(
        lambda: fanned_out_fragments(20),
        {},
        "GRAPHQL_VALIDATION",
        "the document has more than 10,000 selections; at most 10,000 are allowed",
        id="fragments fanning out within the token limit",
    ),
]


@pytest.mark.parametrize(("document", "overrides", "code", "message"), ABUSIVE)
async def test_an_abusive_document_is_refused_with_400(
    settings: Settings,
    engine: AsyncEngine,
    document: Callable[[], str],
    overrides: dict[str, Any],
    code: str,
    message: str,
) -> None:
    async with running(replace(settings, **overrides), engine) as api:
        await api.login()
        response = await post(api, {"query": document()})

    error = refusal(response)
    assert error["extensions"]["code"] == code
    assert message in error["message"]


@pytest.mark.parametrize(
    ("document", "code"),
    [
        pytest.param(nested(40), "GRAPHQL_VALIDATION", id="depth 40"),
        pytest.param(aliases(10_000), "GRAPHQL_PARSE_FAILED", id="10,000 aliases"),
    ],
)
async def test_json_clients_get_the_refusal_with_the_legacy_200(
    api: Api, document: str, code: str
) -> None:
    response = await post(api, {"query": document}, accept=JSON)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(JSON)
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == [code]


async def test_a_5_mb_body_is_refused_by_the_body_limit(api: Api) -> None:
    error = refusal(await post(api, {"query": tokens(470_000)}), status=413)

    assert error["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "1,000,000 bytes" in error["message"]


# Bodies that are not a GraphQL request -----------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b'{"query": "{ __typename \xff }"}', "not valid JSON", id="invalid UTF-8"),
        pytest.param(b'"{ __typename }"', "must be a JSON object", id="a JSON string"),
        pytest.param(b'[{"query": "{ __typename }"}]', "Batching is not enabled", id="an array"),
    ],
)
async def test_a_body_that_is_no_request_is_refused_with_400(
    api: Api, body: bytes, message: str
) -> None:
    error = refusal(await post(api, body))

    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert message in error["message"]


async def test_a_batch_within_max_batch_runs_every_operation(
    settings: Settings, engine: AsyncEngine
) -> None:
    await insert(engine, [make_step_result(flowId="flow_1")])
    async with running(replace(settings, max_batch=3), engine) as api:
        await api.login()
        response = await post(api, [{"query": PAGE}] * 3)

    assert response.status_code == 200, response.text
    assert response.json() == [{"data": {"stepResults": {"pagination": {"returned": 1}}}}] * 3


async def test_a_batch_over_max_batch_is_refused(settings: Settings, engine: AsyncEngine) -> None:
    async with running(replace(settings, max_batch=3), engine) as api:
        await api.login()
        response = await post(api, [{"query": PAGE}] * 4)

    error = refusal(response)
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["message"] == "Too many operations"


# Operations and arguments ------------------------------------------------------------------

TWO_OPERATIONS = "query First { first: __typename } query Second { second: __typename }"


async def test_several_operations_without_operation_name_are_refused(api: Api) -> None:
    error = refusal(await post(api, {"query": TWO_OPERATIONS}))

    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "`operationName`" in error["message"]


async def test_operation_name_picks_the_operation_to_run(api: Api) -> None:
    response = await post(api, {"query": TWO_OPERATIONS, "operationName": "Second"})

    assert response.status_code == 200
    assert response.json() == {"data": {"second": "Query"}}


NEGATIVE = pytest.mark.parametrize(("argument", "value"), [("limit", -1), ("offset", -5)])


@NEGATIVE
async def test_a_negative_page_argument_is_bad_user_input_in_graphql(
    api: Api, argument: str, value: int
) -> None:
    query = f'{{ stepResults(flowId: "flow_1", {argument}: {value}) {{ pagination {{ limit }} }} }}'

    body = await api.graphql(query)

    assert body["data"] == {"stepResults": None}
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": argument}


@NEGATIVE
async def test_a_negative_page_argument_is_bad_user_input_in_rest(
    api: Api, argument: str, value: int
) -> None:
    response = await api.rest("flow_1", **{argument: value})

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["argument"]) == ("BAD_USER_INPUT", argument)


# What tools send runs under the production limits (the `api` fixture's are the defaults) ----

FULL_INTROSPECTION = get_introspection_query(
    descriptions=True,
    specified_by_url=True,
    directive_is_repeatable=True,
    schema_description=True,
    input_value_deprecation=True,
)


@pytest.mark.parametrize("token", [True, False], ids=["with a token", "without a token"])
async def test_the_full_introspection_query_runs_under_the_production_limits(
    api: Api, token: bool
) -> None:
    if not token:
        api.logout()

    response = await post(api, {"query": FULL_INTROSPECTION})

    assert response.status_code == 200, response.text[:2000]
    body = response.json()
    assert "errors" not in body, body["errors"]
    types = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert {"Query", "StepResult", "StepResultConnection"} <= types


# Statement timeout -------------------------------------------------------------------------


def long_statement(settings: Settings) -> str:
    """A statement that runs for seconds: finite, so that without a timeout a test fails."""
    if settings.is_sqlite:
        return (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000000) "
            "SELECT count(*) FROM c"
        )
    return "SELECT pg_sleep(5)"


async def test_a_statement_over_the_timeout_is_cancelled(settings: Settings) -> None:
    engine = create_engine(settings, statement_timeout_ms=50)
    try:
        async with engine.connect() as connection:
            with pytest.raises(StatementTimeout):
                await reads._execute(connection, text(long_statement(settings)))
    finally:
        await engine.dispose()


async def test_the_connection_is_usable_after_a_timeout(settings: Settings) -> None:
    engine = create_engine(settings, statement_timeout_ms=50)
    try:
        async with engine.connect() as connection:
            cancelled = (await connection.get_raw_connection()).driver_connection
            with pytest.raises(StatementTimeout):
                await reads._execute(connection, text(long_statement(settings)))
        async with engine.connect() as connection:
            again = (await connection.get_raw_connection()).driver_connection
            result = await reads._execute(connection, text("SELECT 1"))
            assert result.scalar() == 1
        assert again is cancelled, "the pool dropped the connection instead of reusing it"
    finally:
        await engine.dispose()


# A real cause of a slow read: a writer holding a lock on the table. SQLite readers never wait
# for a writer (WAL), so these run on PostgreSQL only.
ON_POSTGRES = pytest.mark.parametrize(
    "store_kind", [pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]
)


async def while_locked(engine: AsyncEngine, request: Awaitable[T]) -> T:
    """The answer to ``request``, sent while a writer holds a lock on the step results.

    The lock is held until the request is answered, or for 10 s at most: without a statement
    timeout the answer then comes late, and the test fails instead of waiting forever.
    """
    async with engine.connect() as writer:
        await writer.execute(text("LOCK TABLE step_results IN ACCESS EXCLUSIVE MODE"))
        answer = asyncio.ensure_future(request)
        await asyncio.wait({answer}, timeout=10)
    return await answer


@ON_POSTGRES
async def test_a_read_over_the_timeout_is_query_timeout_400_in_rest(
    settings: Settings, engine: AsyncEngine
) -> None:
    await insert(engine, [make_step_result(flowId="flow_1")])
    async with running(replace(settings, statement_timeout_ms=200), engine) as api:
        await api.login()
        response = await while_locked(engine, api.rest("flow_1"))

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "QUERY_TIMEOUT"


@ON_POSTGRES
async def test_a_read_over_the_timeout_is_query_timeout_in_graphql(
    settings: Settings, engine: AsyncEngine
) -> None:
    await insert(engine, [make_step_result(flowId="flow_1")])
    async with running(replace(settings, statement_timeout_ms=200), engine) as api:
        await api.login()
        body = await while_locked(engine, api.graphql(PAGE))

    assert body["data"] == {"stepResults": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TIMEOUT"]
