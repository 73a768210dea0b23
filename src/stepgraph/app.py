"""create_app(settings): routes, lifespan and middleware of the gateway."""

from __future__ import annotations

import gc
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepgraph.auth.authenticator import Authenticator
from stepgraph.auth.jwt import JwtVerifier
from stepgraph.graphiql import ASSETS_PATH, graphiql_assets_app
from stepgraph.graphql.protocol import JSON, QueryLimits, negotiate_media_type
from stepgraph.graphql.schema import build_schema
from stepgraph.graphql.view import graphql_app
from stepgraph.query import PageLimits
from stepgraph.rest import error_response, json_response, list_step_results
from stepgraph.settings import Settings
from stepgraph.store import migrate, reads
from stepgraph.store.engine import create_engine, reading

logger = logging.getLogger("stepgraph")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
GRAPHQL_PATH = "/graphql"


class RequestIdMiddleware:
    """Gives each request an id (or keeps a sane incoming ``X-Request-ID``) and echoes it.

    It is also the last line of defence: an exception that escapes a route is
    logged once with that id and answered with a masked JSON 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unexpected error (request %s)", request_id)
            if started or scope["type"] != "http":
                raise
            response = error_response(
                500, "INTERNAL_SERVER_ERROR", "Internal server error", requestId=request_id
            )
            await response(scope, receive, send_with_id)


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Answers 413 to request bodies over ``max_bytes``, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request bodies are limited to {self.max_bytes:,} bytes"
        if scope.get("path") == GRAPHQL_PATH:
            # GraphQL clients read `errors`, like every other refusal of /graphql.
            accept = Headers(scope=scope).get("accept")
            body = {"errors": [{"message": message, "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]}
            response = Response(
                orjson.dumps(body), 413, media_type=negotiate_media_type(accept) or JSON
            )
        else:
            response = error_response(413, "PAYLOAD_TOO_LARGE", message)
        await response(scope, receive, send)


async def healthz(request: Request) -> Response:
    """Liveness and store reachability."""
    try:
        async with reading(request.state.engine) as connection:
            await reads.ping(connection)
    except Exception:
        logger.exception("health check: store unreachable (request %s)", request.state.request_id)
        return json_response({"status": "unavailable", "store": "unreachable"}, 503)
    return json_response({"status": "ok", "store": "ok"})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "BAD_REQUEST")
    message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
    response = error_response(exc.status_code, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _server_error(request: Request, exc: Exception) -> Response:
    request_id = getattr(request.state, "request_id", None)
    logger.error("unexpected error (request %s)", request_id, exc_info=exc)
    return error_response(
        500, "INTERNAL_SERVER_ERROR", "Internal server error", requestId=request_id
    )


def create_app(settings: Settings, *, freeze_startup_objects: bool = False) -> Starlette:
    """The gateway: /graphql, the REST twin, /healthz and GraphiQL's assets.

    With ``freeze_startup_objects`` (a server process, one app for its lifetime), what
    start-up leaves (the schema, the compiled statements, the libraries' own objects:
    about 120,000) is moved out of the cycle collector's reach once the app is ready
    (``gc.freeze``). A full collection otherwise walks all of it: about 60 ms during
    which every request in flight waits, every few thousand requests.
    """
    limits = PageLimits(default=settings.default_page_size, maximum=settings.max_page_size)
    query_limits = QueryLimits(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_query_aliases,
        max_tokens=settings.max_query_tokens,
        max_batch=settings.max_batch,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        timeout = settings.statement_timeout_ms
        primary = create_engine(settings, statement_timeout_ms=timeout)
        read_engine = (
            create_engine(settings, statement_timeout_ms=timeout, replica=True)
            if settings.replica_database_url
            else primary
        )
        session_tokens = JwtVerifier(settings.jwt) if settings.jwt is not None else None
        try:
            await migrate.prepare(primary)
            if freeze_startup_objects:
                gc.collect()
                gc.freeze()
            yield {
                # Pages, lookups and statistics read here (the replica when configured).
                "engine": read_engine,
                "limits": limits,
                "settings": settings,
                # Keys are checked on the primary: a revocation counts from the next request.
                "authenticator": Authenticator(primary, session_tokens),
            }
        finally:
            if freeze_startup_objects:
                gc.unfreeze()
            if session_tokens is not None:
                await session_tokens.aclose()
            if read_engine is not primary:
                await read_engine.dispose()
            await primary.dispose()

    routes = [
        Route(
            GRAPHQL_PATH,
            graphql_app(build_schema(query_limits), graphiql=settings.graphiql),
            methods=["GET", "POST"],
        ),
        Route("/v1/flows/{flow_id}/step-results", list_step_results, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Mount(ASSETS_PATH, app=graphiql_assets_app(), name="graphiql-assets"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},
    )
    # Each middleware wraps those added before it: request ids outermost, then CORS (so that
    # browsers can read a 413 too), then the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(RequestIdMiddleware)
    return app


def app_from_env() -> Starlette:
    """App factory for uvicorn (``stepgraph serve``): settings from the environment."""
    return create_app(Settings.from_env(), freeze_startup_objects=True)
