"""What every benchmark shares: the dataset's app, its caller, the page query, medians.

Requests are driven straight through the ASGI app (no client library, no socket), so
the CPU a request costs is the gateway's own: routing, middleware, authentication,
the store and the response.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from bench import dataset
from stepgraph.app import create_app
from stepgraph.auth.api_keys import issue_api_key
from stepgraph.graphql.protocol import QueryLimits
from stepgraph.graphql.schema import build_schema
from stepgraph.graphql.view import graphql_app
from stepgraph.settings import Settings
from stepgraph.store import reads
from stepgraph.store.engine import create_engine

# Every field of a step result, as the frontend's list asks for them.
ALL_FIELDS = """
      id userId organizationId batchExecutionId executionSessionId flowId flowVersionId
      recordId recordName stepId stepType stepName order status startedAt completedAt
      durationMs outputPreview createdAt recordMetadata stepConfig inputVariables
      resolvedPrompt modelUsed promptTokens completionTokens totalTokens estimatedCost
      errorMessage retryCount"""

PAGE_QUERY = f"""query StepResultsPage($flowId: ID!, $limit: Int, $offset: Int) {{
  stepResults(flowId: $flowId, limit: $limit, offset: $offset) {{
    data {{{ALL_FIELDS}
    }}
    pagination {{ limit offset returned hasMore }}
  }}
}}"""

SIZES = (25, 100, 500)
BENCH_DIR = Path(__file__).resolve().parent


def bench_settings(path: Path) -> Settings:
    """The gateway's settings over the dataset; pages of up to 500 rows for the 500 case."""
    return Settings(
        data_dir=path.parent,
        database_url=dataset.database_url(path),
        max_page_size=max(SIZES),
        graphiql=False,
    )


@dataclass(frozen=True, slots=True)
class Target:
    """The flow a page is read from and the key of a caller allowed to read it."""

    flow_id: str
    organization_id: str
    key: str


async def prepare_target(settings: Settings) -> Target:
    """The largest flow of the dataset and a fresh API key of its organization."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            organization_id = await reads.largest_flow_owner_id(connection)
            assert organization_id is not None, "the dataset is empty"
            flow_id = await reads.largest_flow_id(connection, organization_id=organization_id)
            assert flow_id is not None
        async with engine.begin() as connection:
            issued = await issue_api_key(
                connection, organization_id=organization_id, user_id="user_bench"
            )
    finally:
        await engine.dispose()
    return Target(flow_id=flow_id, organization_id=organization_id, key=issued.key)


# How /graphql is served: as in production, by Strawberry's executor with the document
# cache (no compiled pages), or by plain Strawberry (no cache, no compiled pages).
GRAPHQL_VARIANTS = ("served", "executor", "stock")


def configure_graphql(app: Starlette, settings: Settings, variant: str) -> None:
    """Serve /graphql of ``app`` as ``variant`` says (see ``GRAPHQL_VARIANTS``)."""
    if variant not in GRAPHQL_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    for route in app.router.routes:
        if isinstance(route, Route) and route.path == "/graphql":
            if variant == "stock":
                limits = QueryLimits(
                    max_depth=settings.max_query_depth,
                    max_aliases=settings.max_query_aliases,
                    max_tokens=settings.max_query_tokens,
                    max_batch=settings.max_batch,
                )
                schema = build_schema(limits, document_cache_size=0)
                route.app = graphql_app(schema, graphiql=False, fast_path=False)
            elif variant == "executor":
                route.app.fast_path = None
            return
    raise LookupError("no /graphql route")


def app_from_env() -> Starlette:
    """uvicorn factory: the gateway from the environment, /graphql as ``BENCH_GRAPHQL`` says."""
    settings = Settings.from_env()
    app = create_app(settings, freeze_startup_objects=True)  # as `stepgraph serve` does
    configure_graphql(app, settings, os.environ.get("BENCH_GRAPHQL", "served"))
    return app


@asynccontextmanager
async def running_app(settings: Settings, variant: str = "served") -> AsyncIterator[ASGIApp]:
    """The gateway over ``settings`` with its lifespan run, /graphql served as ``variant``."""
    app = create_app(settings)
    configure_graphql(app, settings, variant)
    async with LifespanManager(app) as manager:
        yield manager.app


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back from one request."""

    status: int
    headers: dict[str, str]
    body: bytes


def prepared(
    app: ASGIApp,
    method: str,
    path: str,
    *,
    query: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Callable[[], Awaitable[Reply]]:
    """A request built once and sent at each call, so that the client's own work (encoding
    the query string and headers) is not counted as the gateway's."""
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if body:
        raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": urlencode(query or {}).encode(),
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def request() -> Reply:
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 0
        response_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers.extend(message["headers"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        # A fresh scope each time (the app writes its state into it); the headers are
        # only read.
        await app(dict(scope), receive, send)
        decoded = {k.decode("latin-1"): v.decode("latin-1") for k, v in response_headers}
        return Reply(status, decoded, b"".join(chunks))

    return request


def rest_request(app: ASGIApp, target: Target, rows: int) -> Callable[[], Awaitable[Reply]]:
    """The REST twin's page of ``rows`` rows of the target flow."""
    path = f"/v1/flows/{target.flow_id}/step-results"
    headers = {"authorization": f"Bearer {target.key}"}
    return prepared(app, "GET", path, query={"limit": rows}, headers=headers)


def graphql_body(target: Target, rows: int, query: str = PAGE_QUERY) -> bytes:
    """The POST body of the GraphQL page."""
    return orjson.dumps(
        {"query": query, "variables": {"flowId": target.flow_id, "limit": rows, "offset": 0}}
    )


def graphql_request(
    app: ASGIApp, target: Target, rows: int, query: str = PAGE_QUERY
) -> Callable[[], Awaitable[Reply]]:
    """The GraphQL page of ``rows`` rows of the target flow, all fields."""
    body = graphql_body(target, rows, query)
    headers = {
        "authorization": f"Bearer {target.key}",
        "content-type": "application/json",
        "accept": "application/graphql-response+json",
    }
    return prepared(app, "POST", "/graphql", headers=headers, body=body)


def median(values: list[float]) -> float:
    """The median, for tables."""
    return statistics.median(values)


def machine_notes() -> list[str]:
    """Where the numbers came from: CPU, cores, memory, load, versions."""
    notes = [f"python {platform.python_version()} on {platform.platform()}"]
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        notes.append(f"cpu: {model}, {os.cpu_count()} logical cores")
    except (OSError, StopIteration):
        notes.append(f"cpu: {os.cpu_count()} logical cores")
    try:
        meminfo = Path("/proc/meminfo").read_text().split()
        notes.append(f"memory: {int(meminfo[1]) // 1024 // 1024} GiB")
    except (OSError, IndexError, ValueError):
        pass
    load = os.getloadavg()
    notes.append(f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    versions = subprocess.run(
        ["sqlite3", "--version"], capture_output=True, text=True, check=False
    ).stdout.split(" ")[:1]
    import sqlite3

    notes.append(f"sqlite {sqlite3.sqlite_version} (sqlite3 cli {''.join(versions) or 'absent'})")
    return notes
