"""The REST twin of ``GET /v1/flows/{id}/step-results``: same query object, same store call."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from stepgraph.auth.jwt import AuthUnavailable
from stepgraph.auth.viewer import READ_STEP_RESULTS, Forbidden, Unauthenticated
from stepgraph.errors import NotFound
from stepgraph.query import InvalidArgument, PageLimits, StepResultQuery
from stepgraph.store import reads
from stepgraph.store.engine import StatementTimeout, reading

logger = logging.getLogger("stepgraph.rest")


def json_response(body: Any, status_code: int = 200) -> Response:
    """A JSON response encoded with orjson."""
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def error_response(
    status_code: int, code: str, message: str, *, argument: str | None = None, **extra: Any
) -> Response:
    """The contract's error body: ``{"error": {"code", "message", "argument"?}}``."""
    error: dict[str, Any] = {"code": code, "message": message}
    if argument is not None:
        error["argument"] = argument
    error.update(extra)
    return json_response({"error": error}, status_code)


@lru_cache(maxsize=1024)
def page_query(flow_id: str, query_string: bytes, limits: PageLimits) -> StepResultQuery:
    """The page a request asks for, from its flow id and raw query string.

    A pure function of its arguments, so a URL asked for again (a list refreshed, a page
    polled) is parsed and validated once. Refusals raise :class:`InvalidArgument` each
    time: only valid queries are kept.
    """
    parameters = QueryParams(query_string).multi_items()  # as ``request.query_params`` reads it
    return StepResultQuery.from_query_string(flow_id, parameters, limits)


async def list_step_results(request: Request) -> Response:
    """``GET /v1/flows/{flow_id}/step-results``."""
    authenticator = request.state.authenticator
    engine = request.state.engine
    authorization = request.headers.get("authorization")
    try:
        lend = authenticator.lends_connection(engine, authorization)
        viewer = None if lend else await authenticator.authenticate(authorization)
        async with reading(engine) as connection:
            if viewer is None:
                viewer = await authenticator.authenticate(authorization, connection=connection)
            viewer.require(READ_STEP_RESULTS)
            query = page_query(
                request.path_params["flow_id"], request.scope["query_string"], request.state.limits
            )
            page = await reads.fetch_json_page(
                connection, query, organization_id=viewer.organization_id
            )
    except Unauthenticated as exc:
        response = error_response(401, "UNAUTHENTICATED", exc.message)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    except Forbidden as exc:
        return error_response(403, "FORBIDDEN", exc.message)
    except AuthUnavailable as exc:
        return error_response(503, "AUTH_UNAVAILABLE", exc.message)
    except InvalidArgument as exc:
        return error_response(400, "BAD_USER_INPUT", exc.message, argument=exc.argument)
    except NotFound as exc:
        return error_response(404, "NOT_FOUND", str(exc))
    except StatementTimeout as exc:
        return error_response(400, "QUERY_TIMEOUT", str(exc))
    return json_response(
        {
            # The store renders each row as the contract's JSON object already.
            "data": page.rows,
            "pagination": {
                "limit": query.limit,
                "offset": query.offset,
                "returned": len(page.rows),
                "hasMore": page.has_more,
            },
        }
    )
