"""GraphQL beyond the page: single lookups, nesting, error codes and masking."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api import Api
from tests.conftest import insert
from tests.factories import make_step_result
from tests.oracle import normalised
from tests.pages import PAGE_QUERY

ROW = make_step_result(
    id="sr_lookup",
    flowId="flow_x",
    estimatedCost="0.00450",
    createdAt="2024-06-15T12:00:00.5+02:00",
    recordMetadata={"tier": "gold", "tags": ["a", "ü"]},
    modelUsed="gpt-4o-mini",
    totalTokens=42,
)
ALL_FIELDS = PAGE_QUERY.split("data {", 1)[1].split("}", 1)[0]


@pytest.fixture
async def store(engine: AsyncEngine) -> None:
    await insert(
        engine,
        [ROW, *(make_step_result(id=f"sr_{i}", flowId="flow_x") for i in range(3))],
    )


pytestmark = pytest.mark.usefixtures("store")


async def test_step_result_by_id_has_every_field_as_rest_renders_it(api: Api) -> None:
    body = await api.graphql(f'{{ stepResult(id: "sr_lookup") {{ {ALL_FIELDS} }} }}')
    expected = normalised(ROW)
    assert body["data"]["stepResult"] == {**expected, "status": "COMPLETED"}
    assert body["data"]["stepResult"]["estimatedCost"] == "0.0045"
    assert body["data"]["stepResult"]["createdAt"] == "2024-06-15T10:00:00.500000Z"


async def test_an_unknown_step_result_is_null_without_error(api: Api) -> None:
    assert await api.graphql('{ stepResult(id: "nope") { id } }') == {"data": {"stepResult": None}}


async def test_flow_by_id_and_unknown_flow(api: Api) -> None:
    body = await api.graphql(
        '{ known: flow(id: "flow_x") { id } unknown: flow(id: "flow_y") { id } }'
    )
    assert body == {"data": {"known": {"id": "flow_x"}, "unknown": None}}


async def test_flow_step_results_match_the_root_field(api: Api) -> None:
    body = await api.graphql(
        """{
          flow(id: "flow_x") { stepResults(sortBy: ORDER, sortOrder: ASC, limit: 2) {
            data { id } pagination { limit offset returned hasMore } } }
          stepResults(flowId: "flow_x", sortBy: ORDER, sortOrder: ASC, limit: 2) {
            data { id } pagination { limit offset returned hasMore } }
        }"""
    )
    assert body["data"]["flow"]["stepResults"] == body["data"]["stepResults"]
    assert body["data"]["stepResults"]["pagination"]["hasMore"] is True


async def test_a_step_result_leads_to_its_flow(api: Api) -> None:
    body = await api.graphql(
        '{ stepResult(id: "sr_lookup") '
        "{ flow { id stepResults(limit: 1) { pagination { returned } } } } }"
    )
    assert body["data"]["stepResult"]["flow"] == {
        "id": "flow_x",
        "stepResults": {"pagination": {"returned": 1}},
    }


async def test_queries_work_over_get(api: Api) -> None:
    response = await api.client.get(
        "/graphql", params={"query": '{ stepResult(id: "sr_lookup") { id } }'}
    )
    assert response.json() == {"data": {"stepResult": {"id": "sr_lookup"}}}


@pytest.mark.parametrize(
    ("query", "variables", "extensions"),
    [
        ("{ stepResults(flowId: ", {}, {"code": "GRAPHQL_PARSE_FAILED"}),
        ('{ stepResults(flowId: "flow_x") { nope } }', {}, {"code": "GRAPHQL_VALIDATION"}),
        (
            '{ stepResults(flowId: "flow_x", status: DONE) { data { id } } }',
            {},
            {"code": "BAD_USER_INPUT", "argument": "status"},
        ),
        (
            'query($n: Int) { stepResults(flowId: "flow_x", limit: $n) { data { id } } }',
            {"n": "ten"},
            {"code": "BAD_USER_INPUT", "argument": "limit", "variable": "n"},
        ),
        (
            'query($f: DateTime) { stepResults(flowId: "flow_x", from: $f) { data { id } } }',
            {"f": "noon"},
            {"code": "BAD_USER_INPUT", "argument": "from", "variable": "f"},
        ),
    ],
)
async def test_every_error_has_a_code(
    api: Api, query: str, variables: dict[str, Any], extensions: dict[str, Any]
) -> None:
    body = await api.graphql(query, **variables)
    assert body["errors"][0]["extensions"] == extensions


async def test_a_store_failure_is_masked_with_a_request_id(api: Api, engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE step_results"))
    response = await api.client.post(
        "/graphql", json={"query": '{ stepResults(flowId: "flow_x") { data { id } } }'}
    )
    error = response.json()["errors"][0]
    assert error["message"] == "Internal server error"
    assert error["extensions"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "requestId": response.headers["x-request-id"],
    }
    assert "step_results" not in response.text
    assert "Traceback" not in response.text


async def test_an_incoming_request_id_is_kept(api: Api) -> None:
    response = await api.client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"
