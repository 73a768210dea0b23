"""GraphQL over HTTP as real clients speak it: media types, methods, CSRF, CORS, limits, ids."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from cross_web import HTTPException, StarletteRequestAdapter
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.types import Message
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData

from stepgraph.graphql.protocol import QueryLimits
from stepgraph.graphql.schema import build_schema
from stepgraph.graphql.view import graphql_app
from stepgraph.settings import Settings
from tests.api import Api, running
from tests.conftest import insert
from tests.factories import make_step_result

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
# What Apollo Client 4 and urql send.
APOLLO_ACCEPT = f"{GRAPHQL_RESPONSE}, {JSON}"
URQL_ACCEPT = (
    f"{GRAPHQL_RESPONSE}, application/graphql+json, {JSON}, text/event-stream, multipart/mixed"
)
PAGE = '{ stepResults(flowId: "flow_1") { pagination { returned } } }'
APP_ORIGIN = "https://app.example"
OTHER_ORIGIN = "https://evil.example"


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    [error] = body["errors"]
    return dict(error)


# Accept negotiation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        pytest.param(GRAPHQL_RESPONSE, GRAPHQL_RESPONSE, id="graphql-response+json"),
        pytest.param(JSON, JSON, id="json"),
        pytest.param("*/*", JSON, id="anything"),
        pytest.param(None, JSON, id="no Accept"),
        pytest.param(APOLLO_ACCEPT, GRAPHQL_RESPONSE, id="Apollo Client 4"),
        pytest.param(f"{JSON}, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE, id="a tie"),
        pytest.param(f"{GRAPHQL_RESPONSE};q=0.5, {JSON}", JSON, id="json preferred"),
    ],
)
async def test_the_response_type_follows_accept(
    api: Api, accept: str | None, media_type: str
) -> None:
    request = api.client.build_request("POST", "/graphql", json={"query": "{ __typename }"})
    del request.headers["Accept"]
    if accept is not None:
        request.headers["Accept"] = accept

    response = await api.client.send(request)

    assert response.status_code == 200
    assert response.headers["content-type"] == f"{media_type}; charset=utf-8"
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_an_accept_without_a_json_type_is_406(api: Api) -> None:
    response = await api.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Accept": "application/xml"}
    )

    assert response.status_code == 406
    assert only_error(response.json())["extensions"]["code"] == "NOT_ACCEPTABLE"


async def test_apollo_client_gets_401_as_a_graphql_response_without_data(api: Api) -> None:
    api.logout()

    response = await api.client.post(
        "/graphql", json={"query": PAGE}, headers={"Accept": APOLLO_ACCEPT}
    )

    assert response.status_code == 401
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    body = response.json()
    assert "data" not in body
    assert only_error(body)["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
@pytest.mark.parametrize(
    ("arguments", "code"),
    [('flowId: "flow_1", limit: 0', "BAD_USER_INPUT"), ('flowId: "no_such_flow"', "NOT_FOUND")],
    ids=["bad argument", "unknown flow"],
)
async def test_field_errors_stay_200_with_data(
    api: Api, engine: AsyncEngine, accept: str, arguments: str, code: str
) -> None:
    await insert(engine, [make_step_result(flowId="flow_1")])
    query = f"{{ stepResults({arguments}) {{ pagination {{ returned }} }} }}"

    response = await api.client.post("/graphql", json={"query": query}, headers={"Accept": accept})

    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"stepResults": None}
    assert only_error(body)["extensions"]["code"] == code


# Methods -----------------------------------------------------------------------------------


async def test_get_runs_a_query_without_a_content_type(api: Api, engine: AsyncEngine) -> None:
    await insert(engine, [make_step_result(id="sr_get", flowId="flow_1")])
    query = "query ($flowId: ID!) { stepResults(flowId: $flowId) { data { id } } }"
    params = {"query": query, "variables": json.dumps({"flowId": "flow_1"})}
    request = api.client.build_request(
        "GET", "/graphql", params=params, headers={"Accept": URQL_ACCEPT}
    )
    assert "content-type" not in request.headers

    response = await api.client.send(request)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert response.json() == {"data": {"stepResults": {"data": [{"id": "sr_get"}]}}}


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
@pytest.mark.parametrize("operation", ["mutation", "subscription"])
async def test_a_non_query_operation_over_get_is_405(api: Api, accept: str, operation: str) -> None:
    response = await api.client.get(
        "/graphql", params={"query": f"{operation} {{ __typename }}"}, headers={"Accept": accept}
    )

    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    assert only_error(response.json())["extensions"]["code"] == "METHOD_NOT_ALLOWED"


# Cross-site requests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        pytest.param("text/plain", json.dumps({"query": PAGE}), id="text"),
        pytest.param("application/x-www-form-urlencoded", f"query={PAGE}", id="form"),
        pytest.param(
            "multipart/form-data; boundary=b",
            f'--b\r\nContent-Disposition: form-data; name="query"\r\n\r\n{PAGE}\r\n--b--\r\n',
            id="multipart",
        ),
    ],
)
async def test_a_body_a_cross_site_form_can_send_is_415_unexecuted(
    api: Api, content_type: str, content: str
) -> None:
    response = await api.client.post(
        "/graphql", content=content, headers={"Content-Type": content_type}
    )

    assert response.status_code == 415
    body = response.json()
    assert "data" not in body
    assert only_error(body)["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization",
}


async def test_cors_is_off_by_default(api: Api) -> None:
    response = await api.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": APP_ORIGIN}
    )
    preflight = await api.client.options("/graphql", headers={"Origin": APP_ORIGIN, **PREFLIGHT})

    assert "access-control-allow-origin" not in response.headers
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers


@pytest.fixture
async def cors_api(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Api]:
    """The app allowing one browser origin, with a small body limit."""
    changed = replace(settings, cors_origins=(APP_ORIGIN,), max_body_bytes=2048)
    async with running(changed, engine) as api:
        await api.login()
        yield api


async def test_an_allowed_origin_may_read_the_response(cors_api: Api) -> None:
    response = await cors_api.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": APP_ORIGIN}
    )

    assert response.headers["access-control-allow-origin"] == APP_ORIGIN


async def test_an_allowed_origin_gets_its_preflight(cors_api: Api) -> None:
    response = await cors_api.client.options(
        "/graphql", headers={"Origin": APP_ORIGIN, **PREFLIGHT}
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


async def test_another_origin_may_not_read_the_response(cors_api: Api) -> None:
    response = await cors_api.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": OTHER_ORIGIN}
    )
    preflight = await cors_api.client.options(
        "/graphql", headers={"Origin": OTHER_ORIGIN, **PREFLIGHT}
    )

    assert "access-control-allow-origin" not in response.headers
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers


async def test_an_allowed_origin_may_read_a_413(cors_api: Api) -> None:
    response = await cors_api.client.post(
        "/graphql", content=b"x" * 4096, headers={"Origin": APP_ORIGIN, "Content-Type": JSON}
    )

    assert response.status_code == 413
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN


# Body limit --------------------------------------------------------------------------------


async def chunks(size: int) -> AsyncIterator[bytes]:
    """A streamed body without Content-Length."""
    for _ in range(size // 512):
        yield b" " * 512


@pytest.mark.parametrize("streamed", [False, True], ids=["declared", "streamed"])
async def test_a_graphql_body_over_the_limit_is_413(cors_api: Api, streamed: bool) -> None:
    body = b'{"query": "{ __typename }"' + b" " * 4096 + b"}"
    content = chunks(4096) if streamed else body

    response = await cors_api.client.post(
        "/graphql", content=content, headers={"Content-Type": JSON, "Accept": GRAPHQL_RESPONSE}
    )

    assert response.status_code == 413
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert only_error(response.json())["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_a_rest_body_over_the_limit_is_413(cors_api: Api) -> None:
    response = await cors_api.client.request(
        "GET", "/v1/flows/flow_1/step-results", content=b" " * 4096
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


# Request ids -------------------------------------------------------------------------------

QUERY = {"query": "{ __typename }"}
RESPONSES = [
    pytest.param("POST", "/graphql", {"json": QUERY}, 200, id="200"),
    pytest.param("POST", "/graphql", {"json": {"query": "{"}}, 200, id="parse error"),
    pytest.param(
        "POST", "/graphql", {"content": b"[", "headers": {"Content-Type": JSON}}, 400, id="400"
    ),
    pytest.param(
        "GET",
        "/v1/flows/flow_1/step-results",
        {"headers": {"Authorization": "Bearer nope"}},
        401,
        id="401",
    ),
    pytest.param("GET", "/v1/flows/flow_1/step-results", {}, 404, id="404"),
    pytest.param("GET", "/nowhere", {}, 404, id="no route"),
    pytest.param("GET", "/graphql", {"params": {"query": "mutation { x }"}}, 405, id="405"),
    pytest.param(
        "POST", "/graphql", {"json": QUERY, "headers": {"Accept": "text/csv"}}, 406, id="406"
    ),
    pytest.param(
        "POST",
        "/graphql",
        {"content": b" " * 4096, "headers": {"Content-Type": JSON}},
        413,
        id="413",
    ),
    pytest.param(
        "POST",
        "/graphql",
        {"content": "{}", "headers": {"Content-Type": "text/plain"}},
        415,
        id="415",
    ),
    pytest.param("GET", "/healthz", {}, 200, id="health"),
]


@pytest.mark.parametrize(("method", "path", "options", "status"), RESPONSES)
async def test_every_response_echoes_the_request_id(
    cors_api: Api, method: str, path: str, options: dict[str, Any], status: int
) -> None:
    options = dict(options)  # shared by every store's run
    headers = {"X-Request-ID": "trace-42", **options.pop("headers", {})}

    response = await cors_api.client.request(method, path, headers=headers, **options)

    assert response.status_code == status, response.text
    assert response.headers["x-request-id"] == "trace-42"


@pytest.mark.parametrize(
    "incoming", [None, "has space", "x" * 65], ids=["none", "unsafe", "too long"]
)
async def test_a_request_without_a_usable_id_gets_a_new_one(api: Api, incoming: str | None) -> None:
    headers = {} if incoming is None else {"X-Request-ID": incoming}

    response = await api.client.get("/healthz", headers=headers)

    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


# Reading a POSTed operation ------------------------------------------------------------------

# Operations as clients send them, well formed or not; each is read both ways below.
POSTED_BODIES = [
    {"query": PAGE},
    {"query": PAGE, "variables": None, "operationName": None, "extensions": None},
    {"query": PAGE, "variables": {"a": [1]}, "operationName": "Op", "extensions": {"x": {}}},
    {"query": None},
    {},
    {"variables": {}, "unknown": 1},
    {"query": 1},
    {"query": PAGE, "variables": []},
    {"query": PAGE, "variables": "{}"},
    {"query": PAGE, "extensions": 3},
    {"query": PAGE, "operationName": 5},
    {"query": PAGE, "operationName": ["Op"]},
    {"query": ["a"], "variables": 1, "extensions": 1, "operationName": 1},
    {"query": PAGE, "variables": 1, "extensions": []},
]


@pytest.mark.parametrize(
    "accept", [None, JSON, URQL_ACCEPT, f"multipart/mixed, {JSON}", f"text/event-stream, {JSON}"]
)
@pytest.mark.parametrize("body", POSTED_BODIES, ids=lambda body: json.dumps(body)[:60])
async def test_a_posted_operation_is_read_as_strawberry_reads_it(
    body: dict[str, Any], accept: str | None
) -> None:
    """The view reads a one-operation body itself, from the body decoded once; the request
    data or the refusal must be Strawberry's own (with the view's `operationName` check)."""
    view = graphql_app(build_schema(QueryLimits()), graphiql=False)
    headers = [(b"content-type", b"application/json")]
    if accept is not None:
        headers.append((b"accept", accept.encode()))

    def adapter() -> StarletteRequestAdapter:
        async def receive() -> Message:
            return {"type": "http.request", "body": json.dumps(body).encode()}

        scope = {"type": "http", "method": "POST", "path": "/graphql", "headers": headers}
        return StarletteRequestAdapter(Request(scope, receive))

    async def outcome(read: Any) -> Any:
        try:
            data = await read(adapter())
        except HTTPException as exc:
            return (exc.status_code, exc.reason)
        if not isinstance(data.operation_name, str | None):
            return (400, "`operationName` must be a string or null")
        return data

    strawberry = await outcome(lambda request: GraphQL.parse_http_body(view, request))
    decoded: list[object] = []
    decode_json = view.decode_json

    def counted_decode(data: str | bytes) -> object:
        decoded.append(data)
        return decode_json(data)

    view.decode_json = counted_decode  # type: ignore[method-assign]
    assert await outcome(view.parse_http_body) == strawberry
    assert len(decoded) == 1  # the view decodes a body once (Strawberry's path: twice)
    if isinstance(strawberry, GraphQLRequestData):
        assert strawberry.query == body.get("query")
