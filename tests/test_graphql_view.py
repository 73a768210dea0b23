"""POSTed operations are answered as Strawberry's own ``run`` answers them.

The view answers a POST with one operation itself (``GraphQLView._post``), skipping the
steps of ``run`` that only other requests need. Every request here goes to the gateway
as served and to the same gateway whose view runs every POST through ``run``; status,
headers and body must be identical.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from stepgraph.app import create_app
from stepgraph.auth.viewer import READ_STEP_RESULTS, WRITE_STEP_RESULTS
from stepgraph.settings import Settings
from tests.test_fastpath import MAIN_FLOW, PAGE, _issue, graphql_view, seed

GRAPHQL_RESPONSE = "application/graphql-response+json"
FLOW = f'{{ flow(id: "{MAIN_FLOW}") {{ id stepResults(limit: 1) {{ data {{ id }} }} }} }}'

# (body, key, accept) of POSTs a client may send, answered with success or refusal.
REQUESTS: list[tuple[Any, str | None, str | None]] = [
    ({"query": PAGE, "variables": {"flowId": MAIN_FLOW, "limit": 3}}, "reader", GRAPHQL_RESPONSE),
    ({"query": PAGE, "variables": {"flowId": MAIN_FLOW, "limit": 3}}, "reader", None),
    ({"query": PAGE, "variables": {"flowId": "flow_missing"}}, "reader", GRAPHQL_RESPONSE),
    ({"query": PAGE, "variables": {"flowId": MAIN_FLOW, "limit": 0}}, "reader", GRAPHQL_RESPONSE),
    ({"query": PAGE, "variables": {"flowId": MAIN_FLOW}}, None, GRAPHQL_RESPONSE),
    ({"query": PAGE, "variables": {"flowId": MAIN_FLOW}}, "writer", "application/json"),
    ({"query": PAGE, "variables": {"flowId": MAIN_FLOW}}, "unknown", GRAPHQL_RESPONSE),
    ({"query": PAGE}, "reader", GRAPHQL_RESPONSE),
    ({"query": "{ stepResults(flowId: 1) { nope } }"}, "reader", GRAPHQL_RESPONSE),
    ({"query": "{ stepResults("}, "reader", None),
    ({"query": "mutation { x }"}, "reader", GRAPHQL_RESPONSE),
    ({"query": "query A { __typename } query B { __typename }"}, "reader", None),
    ({"query": "query A { __typename } query B { __typename }", "operationName": "B"}, None, None),
    ({"query": "{ __schema { queryType { name } } }"}, None, GRAPHQL_RESPONSE),
    ({"query": FLOW}, "reader", GRAPHQL_RESPONSE),
    ({}, "reader", GRAPHQL_RESPONSE),
    ({"query": None}, "reader", None),
    ({"query": "{ __typename }", "variables": [1]}, "reader", None),
    ({"query": "{ __typename }", "operationName": 3}, "reader", None),
    ([{"query": "{ __typename }"}], "reader", None),
    ("not an object", "reader", None),
    ({"query": "{ __typename }"}, "reader", "text/html"),
]


@dataclass
class Twins:
    """The gateway as served and the same gateway answering every POST through ``run``."""

    clients: list[httpx.AsyncClient]
    keys: dict[str, str]
    # How many requests the served view handed to Strawberry's ``run``.
    served_runs: list[Request]


@pytest.fixture
async def twins(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Twins]:
    await seed(engine)
    keys = {
        "reader": await _issue(engine, "org_1", [READ_STEP_RESULTS]),
        "writer": await _issue(engine, "org_1", [WRITE_STEP_RESULTS]),
        "unknown": "sgk_aaaaaaaaaaaa_" + "a" * 43,
    }
    served, through_run = create_app(settings), create_app(settings)
    view = graphql_view(through_run)
    view._post = view.run  # type: ignore[method-assign]
    served_view = graphql_view(served)
    served_runs: list[Request] = []
    strawberry_run = served_view.run

    async def counted_run(request: Request) -> Response:
        served_runs.append(request)
        return await strawberry_run(request)

    served_view.run = counted_run  # type: ignore[assignment,method-assign]
    async with AsyncExitStack() as stack:
        clients = []
        for app in (served, through_run):
            manager = await stack.enter_async_context(LifespanManager(app))
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://stepgraph.test"
            )
            clients.append(await stack.enter_async_context(client))
        yield Twins(clients, keys, served_runs)


@pytest.mark.parametrize(("body", "key", "accept"), REQUESTS)
async def test_a_post_is_answered_as_strawberry_run_answers_it(
    twins: Twins, body: Any, key: str | None, accept: str | None
) -> None:
    replies = []
    for client in twins.clients:
        headers = {"Content-Type": "application/json", "X-Request-ID": "req-1"}
        if key is not None:
            headers["Authorization"] = f"Bearer {twins.keys[key]}"
        if accept is not None:
            headers["Accept"] = accept
        # Twice: the second request of a text may be answered by the compiled path.
        for _ in range(2):
            response = await client.post("/graphql", content=orjson.dumps(body), headers=headers)
            replies.append((response.status_code, response.headers.multi_items(), response.content))
    served, through_run = replies[:2], replies[2:]
    assert served == through_run
    # Batches are off: no POST here needs ``run`` (a batch would be refused before it).
    assert twins.served_runs == []
