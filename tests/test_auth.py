"""Bearer tokens: who may call, and what they see when they may not."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.auth.api_keys import issue_api_key
from stepgraph.auth.viewer import WRITE_STEP_RESULTS
from stepgraph.settings import Settings
from stepgraph.store.api_keys import revoke_api_keys
from stepgraph.store.tables import api_keys
from tests.api import Api, running
from tests.conftest import insert
from tests.factories import make_step_result

QUERY = '{ stepResults(flowId: "flow_1") { data { id } } }'
INTROSPECTION = "{ __schema { queryType { name } } }"


@pytest.fixture(autouse=True)
async def store(engine: AsyncEngine) -> None:
    await insert(engine, [make_step_result(flowId="flow_1")])


async def assert_refused(api: Api, status: int, code: str) -> None:
    graphql = await api.client.post("/graphql", json={"query": QUERY})
    rest = await api.rest("flow_1")
    assert (graphql.status_code, rest.status_code) == (status, status)
    assert graphql.json()["errors"][0]["extensions"]["code"] == code
    assert rest.json()["error"]["code"] == code
    if status == 401:
        assert graphql.headers["www-authenticate"] == "Bearer"
        assert rest.headers["www-authenticate"] == "Bearer"


async def test_a_valid_key_reads(api: Api) -> None:
    assert (await api.rest("flow_1")).status_code == 200
    assert "errors" not in await api.graphql(QUERY)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer sgk_not_a_key",
        "Bearer sgk_aaaaaaaaaaaa_" + "A" * 43,
        "Bearer some.jwt.token",
        "Bearer two words",
    ],
)
async def test_missing_malformed_and_unknown_tokens_are_401(
    api: Api, authorization: str | None
) -> None:
    api.logout()
    if authorization is not None:
        api.client.headers["Authorization"] = authorization
    await assert_refused(api, 401, "UNAUTHENTICATED")


async def test_revocation_takes_effect_on_the_next_request(api: Api) -> None:
    key_id = api.client.headers["Authorization"].split("_")[1]
    assert (await api.rest("flow_1")).status_code == 200
    async with api.engine.begin() as connection:
        assert await revoke_api_keys(connection, [key_id], at=datetime.now(UTC)) == 1
    await assert_refused(api, 401, "UNAUTHENTICATED")


async def test_an_expired_key_is_refused(api: Api) -> None:
    key_id = api.client.headers["Authorization"].split("_")[1]
    async with api.engine.begin() as connection:
        await connection.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    await assert_refused(api, 401, "UNAUTHENTICATED")


async def test_a_key_without_the_read_scope_is_403(api: Api) -> None:
    await api.login(scopes=[WRITE_STEP_RESULTS])
    await assert_refused(api, 403, "FORBIDDEN")


async def test_keys_are_stored_only_as_hashes(api: Api) -> None:
    key = api.client.headers["Authorization"].removeprefix("Bearer ")
    async with api.engine.connect() as connection:
        rows = (await connection.execute(select(api_keys))).mappings().all()
    assert rows
    assert all(key not in str(dict(row)) for row in rows)
    # The secret may itself hold "_": split off only the prefix and the id.
    assert all(key.split("_", 2)[2] not in str(dict(row)) for row in rows)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scopes": ["admin"]}, "unknown scope"),
        ({"scopes": []}, "at least one scope"),
        ({"organization_id": " "}, "organization"),
        ({"expires_at": datetime(2000, 1, 1, tzinfo=UTC)}, "future"),
    ],
)
async def test_keys_are_issued_only_with_sound_attributes(
    engine: AsyncEngine, overrides: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"organization_id": "org_1", "user_id": "u", **overrides}
    async with engine.begin() as connection:
        with pytest.raises(ValueError, match=message):
            await issue_api_key(connection, **arguments)  # type: ignore[arg-type]


async def test_introspection_is_open_without_a_token(api: Api) -> None:
    api.logout()
    body = await api.graphql(INTROSPECTION)
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_introspection_mixed_with_data_needs_a_token(api: Api) -> None:
    api.logout()
    response = await api.client.post(
        "/graphql", json={"query": '{ __typename stepResult(id: "x") { id } }'}
    )
    assert response.status_code == 401


async def test_introspection_can_be_closed(settings: Settings, engine: AsyncEngine) -> None:
    async with running(replace(settings, introspection=False), engine) as api:
        response = await api.client.post("/graphql", json={"query": INTROSPECTION})
        assert response.status_code == 401
        await api.login()
        assert "errors" not in await api.graphql(INTROSPECTION)
