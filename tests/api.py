"""A thin client for the app: GraphQL and REST side by side."""

from __future__ import annotations

from typing import Any

import httpx


class Api:
    """The app over HTTP in-process: GraphQL and REST side by side."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or None}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def rest(self, flow_id: str, **params: Any) -> httpx.Response:
        return await self.client.get(f"/v1/flows/{flow_id}/step-results", params=params)
