"""The HTTP surface around the two APIs: health, errors, GraphiQL, masking on REST."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api import Api
from tests.conftest import insert
from tests.factories import make_step_result


async def test_healthz_reports_the_store(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "store": "ok"})


async def test_unknown_paths_get_a_json_404(api: Api) -> None:
    response = await api.client.get("/v1/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_the_rest_twin_is_read_only(api: Api) -> None:
    response = await api.client.post("/v1/flows/flow_1/step-results", json={})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_a_store_failure_on_rest_is_a_masked_500(api: Api, engine: AsyncEngine) -> None:
    await insert(engine, [make_step_result(flowId="flow_1")])
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE step_results"))
    response = await api.rest("flow_1")
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "INTERNAL_SERVER_ERROR",
            "message": "Internal server error",
            "requestId": response.headers["x-request-id"],
        }
    }


async def test_graphiql_opens_on_an_example_for_a_real_flow(api: Api, engine: AsyncEngine) -> None:
    await insert(engine, [make_step_result(flowId="flow_demo")])
    response = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "flow_demo" in response.text
    assert "/graphiql/assets/graphiql.min.js" in response.text


async def test_graphiql_assets_are_served(api: Api) -> None:
    response = await api.client.get("/graphiql/assets/graphiql.min.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
