"""The README's example queries run against the demo data `make serve` loads."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.demo import DEMO_SEED, generate_demo_step_results
from stepgraph.settings import Settings
from stepgraph.store.reads import largest_flow_owner_id
from tests.api import Api
from tests.conftest import insert

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
# The runnable examples; the supergraph section's need a second subgraph.
EXAMPLES = README.split("## Example queries", 1)[1].split("\n## ", 1)[0]
GRAPHQL_BLOCKS = re.findall(r"```graphql\n(.*?)```", EXAMPLES, flags=re.DOTALL)
CURL_URLS = [
    word
    for block in re.findall(r"```sh\n(.*?)```", EXAMPLES, flags=re.DOTALL)
    for line in block.splitlines()
    if line.startswith("curl ")
    for word in shlex.split(line)
    if "/v1/flows/" in word
]


@pytest.fixture
async def demo(api: Api, engine: AsyncEngine) -> None:
    """The demo data, read as `serve --demo`'s key: the organization of the largest flow."""
    await insert(engine, generate_demo_step_results(Settings().demo_rows, seed=DEMO_SEED))
    async with engine.connect() as connection:
        organization = await largest_flow_owner_id(connection)
    assert organization is not None
    await api.login(organization)


def test_the_readme_has_examples() -> None:
    assert len(GRAPHQL_BLOCKS) >= 3
    assert len(CURL_URLS) >= 2


@pytest.mark.usefixtures("demo")
@pytest.mark.parametrize("query", GRAPHQL_BLOCKS, ids=lambda q: q.split("\n", 1)[0][:30])
async def test_graphql_examples_return_data(api: Api, query: str) -> None:
    variables = {"batch": "batch_20261002_001"} if "$batch" in query else {}
    body = await api.graphql(query, **variables)
    assert "errors" not in body, body
    assert all(_pages(body["data"])), "an example returns an empty page"
    assert all(value is not None for value in body["data"].values())


def _pages(value: Any) -> list[bool]:
    """Whether each `data` list in a response is empty (False) or not."""
    if isinstance(value, dict):
        found = [bool(value["data"])] if isinstance(value.get("data"), list) else []
        return found + [p for v in value.values() for p in _pages(v)]
    return []


@pytest.mark.usefixtures("demo")
@pytest.mark.parametrize("url", CURL_URLS)
async def test_rest_examples_return_rows(api: Api, url: str) -> None:
    parts = urlsplit(url)
    response = await api.client.get(parts.path, params=parse_qsl(parts.query))
    assert response.status_code == 200, response.text
    assert response.json()["data"]
