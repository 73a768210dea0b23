"""The HTTP surface around the two APIs: health, errors, GraphiQL, masking on REST."""

from __future__ import annotations

import gc
from dataclasses import replace

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.app import app_from_env, create_app
from stepgraph.settings import Settings
from tests.api import Api, running
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


async def test_graphiql_in_demo_mode_starts_with_the_demo_key_on_its_largest_flow(
    settings: Settings, engine: AsyncEngine
) -> None:
    await insert(
        engine,
        [
            make_step_result(flowId="flow_small"),
            *(make_step_result(flowId="flow_big") for _ in range(2)),
            *(make_step_result(flowId="flow_hidden", organizationId="org_2") for _ in range(3)),
        ],
    )
    async with running(settings, engine) as probe:
        key = await probe.login("org_1")
    async with running(replace(settings, demo_key=key), engine) as demo:
        page = (await demo.client.get("/graphql", headers={"Accept": "text/html"})).text
    assert "flow_big" in page
    assert key in page
    assert "flow_hidden" not in page


async def test_graphiql_outside_demo_mode_names_no_flow(api: Api, engine: AsyncEngine) -> None:
    await insert(engine, [make_step_result(flowId="flow_private")])
    api.logout()
    response = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "flow_private" not in response.text
    assert "your-flow-id" in response.text
    assert "/graphiql/assets/graphiql.min.js" in response.text


async def test_graphiql_assets_are_served(api: Api) -> None:
    response = await api.client.get("/graphiql/assets/graphiql.min.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]


async def test_a_served_app_freezes_what_start_up_leaves(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`stepgraph serve`'s app keeps start-up's objects out of full collections while it
    runs; an app built for other uses (tests, embedding) leaves the collector alone."""
    monkeypatch.setenv("STEPGRAPH_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("STEPGRAPH_DATA_DIR", str(settings.data_dir))
    assert gc.get_freeze_count() == 0
    async with LifespanManager(app_from_env()):
        frozen = gc.get_freeze_count()
    assert frozen > 10_000
    assert gc.get_freeze_count() == 0
    async with LifespanManager(create_app(settings)):
        assert gc.get_freeze_count() == 0
