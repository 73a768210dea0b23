"""A thin client for the app: GraphQL and REST side by side, as one organization's caller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.app import create_app
from stepgraph.auth.api_keys import issue_api_key
from stepgraph.auth.viewer import READ_STEP_RESULTS
from stepgraph.settings import Settings

DEFAULT_ORGANIZATION = "org_1"


class Api:
    """The app over HTTP in-process; requests carry the current caller's API key."""

    def __init__(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        self.client = client
        self.engine = engine

    async def login(
        self,
        organization_id: str = DEFAULT_ORGANIZATION,
        scopes: Sequence[str] = (READ_STEP_RESULTS,),
    ) -> str:
        """Issue a key for ``organization_id`` and send it from now on; returns the key."""
        async with self.engine.begin() as connection:
            issued = await issue_api_key(
                connection, organization_id=organization_id, user_id="user_test", scopes=scopes
            )
        self.client.headers["Authorization"] = f"Bearer {issued.key}"
        return issued.key

    def logout(self) -> None:
        """Send no token from now on."""
        self.client.headers.pop("Authorization", None)

    async def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or None}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def rest(self, flow_id: str, **params: Any) -> httpx.Response:
        return await self.client.get(f"/v1/flows/{flow_id}/step-results", params=params)


@asynccontextmanager
async def running(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Api]:
    """The app built from ``settings`` with its lifespan run, and a client for it."""
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://stepgraph.test"
        ) as client,
    ):
        yield Api(client, engine)
