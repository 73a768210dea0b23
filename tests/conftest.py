"""Shared fixtures: a fresh store per test, and the app over it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.app import create_app
from stepgraph.records import parse_step_result
from stepgraph.settings import Settings
from stepgraph.store import migrate
from stepgraph.store.engine import create_engine
from stepgraph.store.writes import upsert_step_results
from tests.api import Api


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a fresh SQLite file in this test's own folder."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty store."""
    engine = create_engine(settings)
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


async def insert(engine: AsyncEngine, rows: Iterable[dict[str, Any]]) -> None:
    """Store contract-shaped rows through the same path as an import."""
    async with engine.begin() as connection:
        await upsert_step_results(connection, [parse_step_result(row) for row in rows])


@pytest.fixture
async def api(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Api]:
    """The app with its lifespan run, over the same fresh store as ``engine``."""
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://stepgraph.test"
        ) as client,
    ):
        yield Api(client)
