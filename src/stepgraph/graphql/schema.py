"""The federation schema: root fields and the schema object."""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.federation.schema import FederationAny
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from stepgraph.graphql.auth import RequireViewer
from stepgraph.graphql.context import Context
from stepgraph.graphql.documents import (
    DEFAULT_MAX_DOCUMENTS,
    DocumentCache,
    DocumentCacheExtension,
)
from stepgraph.graphql.entities import representation_problem
from stepgraph.graphql.errors import ErrorCodes, is_unexpected
from stepgraph.graphql.protocol import OperationSelection, QueryLimits, limit_extensions
from stepgraph.graphql.scalars import SCALAR_OVERRIDES
from stepgraph.graphql.stats import (
    STATS_SCALARS,
)
from stepgraph.graphql.types import (
    Flow,
    StepResult,
    resolve_step_result_stats,
    resolve_step_results,
    resolve_step_results_connection,
)
from stepgraph.query import InvalidArgument, identifier

logger = logging.getLogger("stepgraph.graphql")


@strawberry.type(description="Read step results of flow runs.")
class Query:
    step_results = strawberry.field(
        resolver=resolve_step_results,
        description=(
            "Step results of one flow, filtered, sorted and paged exactly like "
            "`GET /v1/flows/{id}/step-results`. Null with a NOT_FOUND error when the flow "
            "does not exist; BAD_USER_INPUT (naming the argument) for an invalid argument."
        ),
    )
    step_results_connection = strawberry.field(
        resolver=resolve_step_results_connection,
        description=(
            "Step results of one flow as a Relay cursor connection: the filters and sort of "
            "`stepResults`, paged by `first`/`after` or `last`/`before` in constant time "
            "however deep, for infinite scroll. Null with a NOT_FOUND error when the flow "
            "does not exist; BAD_USER_INPUT (naming the argument) for an invalid argument or "
            "a cursor of another list."
        ),
    )
    step_result_stats = strawberry.field(
        resolver=resolve_step_result_stats,
        description=(
            "Counts, token and cost sums and duration percentiles over the step results of "
            "one flow that the filters select (the filters of `stepResults`). Null with a "
            "NOT_FOUND error when the flow does not exist; BAD_USER_INPUT (naming the "
            "argument) for an invalid argument."
        ),
    )

    @strawberry.field(description="One step result by id; null when it does not exist.")
    async def step_result(
        self,
        info: strawberry.Info[Context, None],
        id: Annotated[strawberry.ID, strawberry.argument(description="The step result's id.")],
    ) -> StepResult | None:
        row = await info.context.step_results.load(identifier("id", str(id)))
        return None if row is None else StepResult.from_row(row)

    @strawberry.field(description="One flow by id; null when it does not exist.")
    async def flow(
        self,
        info: strawberry.Info[Context, None],
        id: Annotated[strawberry.ID, strawberry.argument(description="The flow's id.")],
    ) -> Flow | None:
        row = await info.context.flows.load(identifier("id", str(id)))
        return None if row is None else Flow(id=id)


class StepgraphSchema(strawberry.federation.Schema):
    """Logs what the client will only see masked, with the request id to find it."""

    def entities_resolver(
        self, info: strawberry.Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        # A malformed representation is the caller's mistake: say which, rather than
        # letting Strawberry fail on it as an internal error.
        for index, representation in enumerate(representations):
            problem = representation_problem(representation)
            if problem is not None:
                raise InvalidArgument("representations", f"representations[{index}] {problem}")
        return super().entities_resolver(info, representations)

    # Parsed and validated query texts (see graphql.documents); None when not cached.
    documents: DocumentCache | None = None

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        request_id: Any = getattr(getattr(execution_context, "context", None), "request_id", None)
        for error in errors:
            if is_unexpected(error):
                logger.error(
                    "unexpected error in GraphQL request %s",
                    request_id,
                    exc_info=error.original_error,
                )


def build_schema(
    limits: QueryLimits | None = None, *, document_cache_size: int = DEFAULT_MAX_DOCUMENTS
) -> StepgraphSchema:
    """The schema served at /graphql and exported to ``schema.graphql``.

    ``limits`` only change which documents are refused, never the SDL. Query texts
    are parsed and validated once, up to ``document_cache_size`` of them (0: every
    time, as Strawberry does by default).
    """
    limits = limits or QueryLimits()
    documents = DocumentCache(document_cache_size) if document_cache_size > 0 else None
    # Last, so that it wraps graphql-core's validation alone (see graphql.documents).
    caching = [partial(DocumentCacheExtension, cache=documents)] if documents is not None else []
    config = StrawberryConfig(
        batching_config={"max_operations": limits.max_batch} if limits.max_batch else None
    )
    schema = StepgraphSchema(
        query=Query,
        config=config,
        types=[StepResult, Flow],
        scalar_overrides={**SCALAR_OVERRIDES, **STATS_SCALARS},
        # 2.9 is the newest federation version every composer we test with knows
        # (Hive's stops there); stepgraph needs only @key and @tag.
        federation_version="2.9",
        extensions=[
            ErrorCodes,
            *limit_extensions(limits),
            OperationSelection,
            RequireViewer,
            *caching,
        ],
    )
    schema.documents = documents
    return schema
