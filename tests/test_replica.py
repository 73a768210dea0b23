"""A read-only replica serves reads; keys are always checked on the primary."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.settings import Settings
from stepgraph.store import migrate
from stepgraph.store.engine import create_engine
from tests.api import running
from tests.conftest import insert
from tests.factories import make_step_result


async def test_pages_come_from_the_replica_and_keys_from_the_primary(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    replica_settings = Settings(data_dir=tmp_path / "replica")
    replica = create_engine(replica_settings)
    try:
        await migrate.upgrade(replica)
        await insert(replica, [make_step_result(id="on_replica", flowId="flow_r")])
    finally:
        await replica.dispose()
    await insert(engine, [make_step_result(id="on_primary", flowId="flow_r")])

    with_replica = replace(settings, replica_database_url=replica_settings.database_url)
    async with running(with_replica, engine) as api:
        await api.login()  # the key is written to, and checked on, the primary
        body = await api.graphql('{ stepResults(flowId: "flow_r") { data { id } } }')
        rest = await api.rest("flow_r")

    assert body["data"]["stepResults"]["data"] == [{"id": "on_replica"}]
    assert [row["id"] for row in rest.json()["data"]] == ["on_replica"]


def test_pool_and_replica_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "STEPGRAPH_POOL_SIZE": "20",
            "STEPGRAPH_POOL_MAX_OVERFLOW": "0",
            "STEPGRAPH_REPLICA_DATABASE_URL": "postgresql+asyncpg://reader@replica/db",
        }
    )
    assert (settings.pool_size, settings.pool_max_overflow) == (20, 0)
    assert settings.replica_database_url == "postgresql+asyncpg://reader@replica/db"
    assert settings.extra == {}


async def test_sqlite_keeps_every_connection_it_opens(tmp_path: Path) -> None:
    # Under load a pool that closes its overflow connections opens new ones at once: on
    # SQLite each is a new thread with its PRAGMAs. The bound stays size + overflow.
    engine = create_engine(Settings(data_dir=tmp_path, pool_size=2, pool_max_overflow=3))
    try:
        async with AsyncExitStack() as stack:
            for _ in range(5):
                await stack.enter_async_context(engine.connect())
        assert engine.pool.checkedin() == 5  # type: ignore[attr-defined]
        async with AsyncExitStack() as stack:
            for _ in range(5):
                await stack.enter_async_context(engine.connect())
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(engine.connect().start(), timeout=0.5)
    finally:
        await engine.dispose()
